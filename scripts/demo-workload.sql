-- Run by scripts/demo.sh through Sluice after pgbench: a few queries that
-- show results, settings and a transaction going through the proxy.
\echo '-- accounts loaded by pgbench -i'
SELECT count(*) AS accounts, sum(abalance) AS total_balance FROM pgbench_accounts;
\echo '-- who the server thinks we are'
SELECT current_user, current_database(), current_setting('application_name') AS application_name, version();
\echo '-- a transaction: the update is visible inside it and rolled back after'
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + 100 WHERE aid = 1;
SELECT aid, abalance FROM pgbench_accounts WHERE aid = 1;
ROLLBACK;
SELECT aid, abalance FROM pgbench_accounts WHERE aid = 1;
