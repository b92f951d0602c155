package auth_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sluice-proxy/sluice/proxy/auth"
)

// pipeAuth runs Authenticate on one end of a net.Pipe and returns the
// client end as a pgproto3.Frontend plus a function that waits for
// Authenticate's result. The pipe is closed when the test ends.
func pipeAuth(t testing.TB, method auth.Method, user string, secret auth.Secret, found bool) (*pgproto3.Frontend, net.Conn, func() error) {
	t.Helper()
	srv, cli := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		be := pgproto3.NewBackend(srv, srv)
		err := auth.Authenticate(be, method, user, secret, found)
		if err == nil {
			// What the caller does next: Ok goes out with a queued SASLFinal.
			be.Send(&pgproto3.AuthenticationOk{})
			err = be.Flush()
		}
		srv.Close()
		done <- err
	}()
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return pgproto3.NewFrontend(cli, cli), cli, func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Authenticate did not return")
			return nil
		}
	}
}

// receive reads one backend message, failing the test on error.
func receive(t testing.TB, fe *pgproto3.Frontend) pgproto3.BackendMessage {
	t.Helper()
	msg, err := fe.Receive()
	if err != nil {
		t.Fatalf("client receive: %v", err)
	}
	return msg
}

func send(t testing.TB, fe *pgproto3.Frontend, msg pgproto3.FrontendMessage) {
	t.Helper()
	fe.Send(msg)
	if err := fe.Flush(); err != nil {
		t.Fatalf("client send: %v", err)
	}
}

// wantCode checks that err is an *auth.Error with the SQLSTATE and message.
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *auth.Error %s", err, err, code)
	}
	if ae.Code != code || (msg != "" && ae.Message != msg) {
		t.Fatalf("error = %s %q, want %s %q", ae.Code, ae.Message, code, msg)
	}
	if ae.Severity != "FATAL" {
		t.Fatalf("severity = %q, want FATAL", ae.Severity)
	}
}

// fakeServer is the smallest PostgreSQL a real client can log in to: it
// reads the StartupMessage, runs Authenticate with the secret lookup given,
// and answers AuthenticationOk + ReadyForQuery, or the ErrorResponse the
// proxy would send. It serves until the test ends.
func fakeServer(t *testing.T, method auth.Method, lookup func(user string) (auth.Secret, bool)) (addr string, results <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 16)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			serveOne(conn, method, lookup, ch)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	t.Cleanup(func() { close(stop); ln.Close(); <-done })
	return ln.Addr().String(), ch
}

func serveOne(conn net.Conn, method auth.Method, lookup func(string) (auth.Secret, bool), ch chan<- error) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	be := pgproto3.NewBackend(conn, conn)
	msg, err := be.ReceiveStartupMessage()
	if err != nil {
		ch <- err
		return
	}
	sm, ok := msg.(*pgproto3.StartupMessage)
	if !ok {
		ch <- errors.New("not a startup message")
		return
	}
	user := sm.Parameters["user"]
	secret, found := lookup(user)
	err = auth.Authenticate(be, method, user, secret, found)
	var ae *auth.Error
	switch {
	case err == nil:
		be.Send(&pgproto3.AuthenticationOk{})
		be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
		be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		be.Flush()
	case errors.As(err, &ae):
		be.Send(ae.ErrorResponse())
		be.Flush()
	}
	ch <- err
}

// connect logs in to addr with pgx's own client code.
func connect(t *testing.T, addr, user, password string) error {
	t.Helper()
	cfg, err := pgconn.ParseConfig("postgres://" + addr + "/db?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password = user, password
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	conn.Close(ctx)
	return nil
}

func secretOf(t testing.TB, user, s string) auth.Secret {
	t.Helper()
	sec, err := auth.ParseSecret(user, s)
	if err != nil {
		t.Fatalf("ParseSecret(%q): %v", s, err)
	}
	return sec
}
