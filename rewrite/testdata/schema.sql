-- Test schema for rewrite/pg_test.go: pgbench, TPC-H-like, Rails, Django and
-- Hibernate-style tables with deterministic data. Loaded into a fresh
-- database that the test creates and drops.
CREATE TABLE pgbench_branches (bid int PRIMARY KEY, bbalance int NOT NULL, filler char(88));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int NOT NULL, tbalance int NOT NULL, filler char(84));
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
INSERT INTO pgbench_branches SELECT g, 0, '' FROM generate_series(1, 3) g;
INSERT INTO pgbench_tellers SELECT g, (g - 1) / 10 + 1, 0, '' FROM generate_series(1, 30) g;
INSERT INTO pgbench_accounts SELECT g, (g - 1) / 100 + 1, (g * 37) % 1000 - 500, '' FROM generate_series(1, 300) g;
INSERT INTO pgbench_history SELECT g % 30 + 1, g % 3 + 1, g % 300 + 1, g - 25, timestamp '2024-01-01' + g * interval '1 minute', '' FROM generate_series(1, 50) g;

CREATE TABLE region (r_regionkey int PRIMARY KEY, r_name text NOT NULL, r_comment text);
CREATE TABLE nation (n_nationkey int PRIMARY KEY, n_name text NOT NULL, n_regionkey int NOT NULL REFERENCES region, n_comment text);
CREATE TABLE supplier (s_suppkey int PRIMARY KEY, s_name text, s_address text, s_nationkey int REFERENCES nation, s_phone text, s_acctbal numeric(12,2), s_comment text);
CREATE TABLE customer (c_custkey int PRIMARY KEY, c_name text, c_address text, c_nationkey int REFERENCES nation, c_phone text, c_acctbal numeric(12,2), c_mktsegment text, c_comment text);
CREATE TABLE part (p_partkey int PRIMARY KEY, p_name text, p_mfgr text, p_brand text, p_type text, p_size int, p_container text, p_retailprice numeric(12,2), p_comment text);
CREATE TABLE partsupp (ps_partkey int REFERENCES part, ps_suppkey int REFERENCES supplier, ps_availqty int, ps_supplycost numeric(12,2), ps_comment text, PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE orders (o_orderkey int PRIMARY KEY, o_custkey int REFERENCES customer, o_orderstatus char(1), o_totalprice numeric(12,2), o_orderdate date, o_orderpriority text, o_clerk text, o_shippriority int, o_comment text);
CREATE TABLE lineitem (l_orderkey int REFERENCES orders, l_partkey int, l_suppkey int, l_linenumber int, l_quantity numeric(12,2), l_extendedprice numeric(12,2), l_discount numeric(12,2), l_tax numeric(12,2), l_returnflag char(1), l_linestatus char(1), l_shipdate date, l_commitdate date, l_receiptdate date, l_shipinstruct text, l_shipmode text, l_comment text, PRIMARY KEY (l_orderkey, l_linenumber));
INSERT INTO region SELECT g, (ARRAY['AFRICA','AMERICA','ASIA','EUROPE','MIDDLE EAST'])[g + 1], 'region ' || g FROM generate_series(0, 4) g;
INSERT INTO nation SELECT g, 'NATION' || g, g % 5, 'nation ' || g FROM generate_series(0, 24) g;
INSERT INTO supplier SELECT g, 'Supplier#' || g, 'addr ' || g, g % 25, '10-' || g, (g * 13) % 1000, CASE WHEN g % 7 = 0 THEN 'Customer Complaints' ELSE 'ok' END FROM generate_series(1, 40) g;
INSERT INTO customer SELECT g, 'Customer#' || g, 'addr ' || g, g % 25, (10 + g % 25) || '-' || g, (g * 17) % 1000 - 100, (ARRAY['BUILDING','AUTOMOBILE','MACHINERY','HOUSEHOLD','FURNITURE'])[g % 5 + 1], 'c' FROM generate_series(1, 150) g;
INSERT INTO part SELECT g, 'part ' || (ARRAY['green','forest','blue','red'])[g % 4 + 1], 'Manufacturer#' || (g % 5 + 1), 'Brand#' || (g % 5 + 1) || (g % 3 + 1), (ARRAY['PROMO BRUSHED','STANDARD POLISHED','ECONOMY ANODIZED','MEDIUM PLATED'])[g % 4 + 1] || ' BRASS', g % 50 + 1, (ARRAY['SM CASE','LG BOX','MED BAG','JUMBO PKG'])[g % 4 + 1], 900 + g, 'p' FROM generate_series(1, 200) g;
INSERT INTO partsupp SELECT p, s, (p * s) % 9999, (p + s) % 100 + 1, 'ps' FROM generate_series(1, 200) p, generate_series(1, 40, 10) s;
INSERT INTO orders SELECT g, g % 150 + 1, (ARRAY['O','F','P'])[g % 3 + 1], (g * 101) % 50000, date '1995-01-01' + (g % 1500), (ARRAY['1-URGENT','2-HIGH','3-MEDIUM','4-NOT SPECIFIED','5-LOW'])[g % 5 + 1], 'Clerk#' || g % 10, 0, 'o' FROM generate_series(1, 600) g;
INSERT INTO lineitem SELECT o, l, (o * l) % 200 + 1, (o + l) % 40 + 1, l * 3 + o % 7, (o * l) % 10000 + 100, (o % 10) / 100.0, (l % 8) / 100.0, (ARRAY['R','A','N'])[o % 3 + 1], (ARRAY['O','F'])[l % 2 + 1], date '1995-01-01' + (o % 1500) + l, date '1995-01-01' + (o % 1500) + 10, date '1995-01-01' + (o % 1500) + l + 5, 'DELIVER IN PERSON', (ARRAY['MAIL','SHIP','AIR','TRUCK'])[l % 4 + 1], 'l' FROM generate_series(1, 600) o, generate_series(1, 4) l;

CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text, admin boolean NOT NULL DEFAULT false, settings jsonb NOT NULL DEFAULT '{}', created_at timestamp NOT NULL, updated_at timestamp NOT NULL);
CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users, title text, body text, published boolean NOT NULL DEFAULT false, tags text[] NOT NULL DEFAULT '{}', created_at timestamp NOT NULL);
CREATE TABLE comments (id bigserial PRIMARY KEY, post_id bigint REFERENCES posts, user_id bigint REFERENCES users, body text, created_at timestamp NOT NULL);
INSERT INTO users (email, name, admin, settings, created_at, updated_at) SELECT 'u' || g || '@example.com', 'User ' || g, g % 10 = 0, jsonb_build_object('theme', CASE WHEN g % 2 = 0 THEN 'dark' ELSE 'light' END, 'lang', 'en', 'tags', jsonb_build_array('a', g)), timestamp '2024-01-01' + g * interval '1 day', timestamp '2024-06-01' + g * interval '1 hour' FROM generate_series(1, 40) g;
INSERT INTO posts (user_id, title, body, published, tags, created_at) SELECT g % 40 + 1, 'Post ' || g, 'Body of post ' || g, g % 3 <> 0, ARRAY['t' || g % 4, 'x'], timestamp '2024-02-01' + g * interval '1 day' FROM generate_series(1, 120) g;
INSERT INTO comments (post_id, user_id, body, created_at) SELECT g % 120 + 1, g % 40 + 1, 'comment ' || g, timestamp '2024-03-01' + g * interval '1 hour' FROM generate_series(1, 300) g;

CREATE TABLE auth_user (id serial PRIMARY KEY, password text NOT NULL DEFAULT '', last_login timestamptz, is_superuser boolean NOT NULL DEFAULT false, username text NOT NULL UNIQUE, first_name text NOT NULL DEFAULT '', last_name text NOT NULL DEFAULT '', email text NOT NULL DEFAULT '', is_staff boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true, date_joined timestamptz NOT NULL);
CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamptz NOT NULL);
INSERT INTO auth_user (username, email, is_active, is_staff, date_joined, last_login) SELECT 'user' || g, 'user' || g || '@example.org', g % 5 <> 0, g % 9 = 0, timestamptz '2023-01-01 00:00:00+00' + g * interval '1 day', CASE WHEN g % 4 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour' END FROM generate_series(1, 60) g;
INSERT INTO django_session SELECT md5(g::text), 'data' || g, timestamptz '2030-01-01 00:00:00+00' + g * interval '1 day' FROM generate_series(1, 20) g;

CREATE SCHEMA hr;
CREATE TABLE hr.department (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE hr.employee (id bigint PRIMARY KEY, name text NOT NULL, dept_id bigint REFERENCES hr.department, salary numeric(10,2), hired_on date, version int NOT NULL DEFAULT 0);
INSERT INTO hr.department SELECT g, 'Dept ' || g FROM generate_series(1, 6) g;
INSERT INTO hr.employee SELECT g, 'Emp ' || g, g % 6 + 1, 30000 + g * 250, date '2015-01-01' + g * 17, 0 FROM generate_series(1, 90) g;

CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO events (kind, payload, created_at) SELECT (ARRAY['click','view','buy'])[g % 3 + 1], jsonb_build_object('user', g % 12, 'amount', g * 3, 'items', jsonb_build_array(jsonb_build_object('sku', 'A' || g % 5, 'qty', g % 4 + 1))), timestamptz '2024-05-01 00:00:00+00' + g * interval '10 minutes' FROM generate_series(1, 80) g;
CREATE MATERIALIZED VIEW daily_events AS SELECT date_trunc('day', created_at) AS day, kind, count(*) AS n FROM events GROUP BY 1, 2;
CREATE VIEW active_users AS SELECT * FROM auth_user WHERE is_active;
