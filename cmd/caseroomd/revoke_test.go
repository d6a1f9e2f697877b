package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"caseroom/acl/pgdb/pgdbtest"
	aclpg "caseroom/acl/postgres"
	"caseroom/chat/chatclient"
	"caseroom/chat/chatws"
)

// Revocations the server did not make itself still end its sockets: a
// session logged out ends that session's socket and no other, and a user
// disabled by the admin command — another process on the same database —
// loses every open socket, on SQLite (the polled revocation log) and on
// PostgreSQL (the NOTIFY feed).
func TestRevocationsFromElsewhereEndSockets(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn := ""
			if db == "postgres" {
				dsn = pgdbtest.URLWithSchema(t)
			}
			vars := testEnv(t, dsn)
			s := mustServe(t, vars, "-demo")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const user = "police.150102.officer1"
			clients, conns := sessionsWithSockets(t, ctx, s, user, 3) // three logins of one user

			// Session 0 logs out: its socket ends with 4003, the others stay.
			if code := s.call(t, "POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": clients[0].RefreshToken()}, nil); code != 204 {
				t.Fatalf("logout: status %d", code)
			}
			waitRevoked(t, ctx, conns[0], "the logged-out session's socket")
			stillLive(t, ctx, clients[1], conns[1:], "after-logout")

			// The admin command, on its own, disables the user.
			var out, errs bytes.Buffer
			if err := run(ctx, []string{"admin", "disable-user", "-user", user}, env(vars), &out, &errs); err != nil {
				t.Fatalf("admin disable-user: %v\n%s", err, errs.String())
			}
			for i, conn := range conns[1:] {
				waitRevoked(t, ctx, conn, fmt.Sprintf("a socket of the disabled user (session %d)", i+1))
			}
			if _, err := chatclient.Login(ctx, s.base, user, s.accounts[user]); err == nil {
				t.Fatal("the disabled user logged in again")
			}

			// /metrics tells it: three sockets revoked, none left (the
			// readers close their sessions as their sockets end), and the
			// room and the post committed.
			want := map[string]func(float64) bool{
				"caseroom_ws_revoked_total":     func(v float64) bool { return v == 3 },
				"caseroom_ws_sessions":          func(v float64) bool { return v == 0 },
				"caseroom_commit_entries_total": func(v float64) bool { return v >= 2 },
				"caseroom_commit_batches_total": func(v float64) bool { return v >= 1 },
			}
			var got map[string]float64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				got = s.scrape(t)
				ok := true
				for name, good := range want {
					v, found := got[name]
					ok = ok && found && good(v)
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/metrics = %v; want revoked 3, sessions 0, commit entries ≥ 2 and batches ≥ 1", got)
				}
			}
		})
	}
}

// sessionsWithSockets logs user in n times and opens a socket for each
// session; the sockets are closed when the test ends.
func sessionsWithSockets(t *testing.T, ctx context.Context, s *server, user string, n int) ([]*chatclient.Client, []*chatclient.Conn) {
	t.Helper()
	var clients []*chatclient.Client
	var conns []*chatclient.Conn
	for range n {
		c, err := chatclient.Login(ctx, s.base, user, s.accounts[user])
		if err != nil {
			t.Fatal(err)
		}
		conn, err := c.Connect(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		clients, conns = append(clients, c), append(conns, conn)
	}
	return clients, conns
}

// waitRevoked waits, at most 10 s, for conn to end with CloseRevoked.
func waitRevoked(t *testing.T, ctx context.Context, conn *chatclient.Conn, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		_, err := conn.Next(ctx)
		if err == nil {
			continue
		}
		if code := chatclient.CloseStatus(err); code != int(chatws.CloseRevoked) {
			t.Fatalf("%s ended with %v (close code %d), want close code %d", what, err, code, chatws.CloseRevoked)
		}
		return
	}
}

// scrape reads /metrics into name → value (lines without labels).
func (s *server) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// A revocation made while the server's revocation feed was not listening is
// never notified to it; when the feed is back, the server reads the session
// of every open socket again and ends the revoked ones. Here the database's
// notification trigger is disabled for the logout and the listener's
// connection is then cut.
func TestRevocationsMissedByTheFeedAreSweptWhenItIsBack(t *testing.T) {
	url, dbname := pgdbtest.URLWithDatabase(t)
	s := mustServe(t, testEnv(t, url), "-demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())

	const user = "police.150102.officer1"
	clients, conns := sessionsWithSockets(t, ctx, s, user, 2)
	if _, err := db.Exec(ctx, `ALTER TABLE acl_sessions DISABLE TRIGGER acl_sessions_revoked`); err != nil {
		t.Fatal(err)
	}
	if code := s.call(t, "POST", "/api/v1/auth/logout", "", map[string]string{"refresh_token": clients[0].RefreshToken()}, nil); code != 204 {
		t.Fatalf("logout: status %d", code)
	}
	if _, err := db.Exec(ctx, `ALTER TABLE acl_sessions ENABLE TRIGGER acl_sessions_revoked`); err != nil {
		t.Fatal(err)
	}
	var cut int
	if err := db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND application_name = $2`, dbname, aclpg.ListenerName).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("cut the listener: %d cut, %v; want 1", cut, err)
	}
	waitRevoked(t, ctx, conns[0], "the socket of the session logged out unnotified")

	// The other session's socket is still there and receives a new post.
	stillLive(t, ctx, clients[1], conns[1:], "after-sweep")
}

// stillLive has c create a room and post in it with client id cid, and
// checks that each of conns, sockets of sessions not revoked, receives the
// post rather than ending.
func stillLive(t *testing.T, ctx context.Context, c *chatclient.Client, conns []*chatclient.Conn, cid string) {
	t.Helper()
	room, err := c.CreateRoom(ctx, "撤销后仍在线 "+cid, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Post(ctx, room.ID, chatclient.PostRequest{ClientID: cid, Body: "其他会话照常"}); err != nil {
		t.Fatal(err)
	}
	for i, conn := range conns {
		for {
			f, err := conn.Next(ctx)
			if err != nil {
				t.Fatalf("socket %d of a session not revoked ended before post %s: %v (close code %d)", i, cid, err, chatclient.CloseStatus(err))
			}
			if f.Type == "message" && f.Room == room.ID && f.Message.ClientID == cid {
				break
			}
		}
	}
}
