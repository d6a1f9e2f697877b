package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// usersFile is what "caseroomd admin bench-provision" writes (cmd/caseroomd's
// BenchFile, the same JSON).
type usersFile struct {
	Created   time.Time   `json:"created"`
	Database  string      `json:"database"`
	Prefix    string      `json:"prefix"`
	BlockSize int         `json:"block_size"`
	RoomSize  int         `json:"room_size"`
	Users     []benchUser `json:"users"`
	Rooms     [][]string  `json:"rooms"`
	Members   [][][]int   `json:"members"`
}

type benchUser struct {
	ID        string    `json:"id"`
	Password  string    `json:"password"`
	Unit      string    `json:"unit"`
	Refresh   string    `json:"refresh"`
	Access    string    `json:"access,omitempty"`
	AccessExp time.Time `json:"access_exp,omitzero"`
}

func loadUsers(path string) (*usersFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f usersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.BlockSize <= 0 || len(f.Users) == 0 || len(f.Rooms) != len(f.Users)/f.BlockSize {
		return nil, fmt.Errorf("%s: not a bench-provision file", path)
	}
	return &f, nil
}

// save writes f atomically (a rotated refresh token must not be lost).
func (f *usersFile) save(path string) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// headsFile keeps each room's head after the last run, so that the next run's
// hello names it and the server replays only what is new.
func loadHeads(path string) map[string]int64 {
	m := map[string]int64{}
	if b, err := os.ReadFile(path); err == nil {
		json.Unmarshal(b, &m)
	}
	return m
}

func saveHeads(path string, m map[string]int64) error {
	b, _ := json.Marshal(m)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type tokenAnswer struct {
	AccessToken     string    `json:"access_token"`
	AccessExpiresAt time.Time `json:"access_expires_at"`
	RefreshToken    string    `json:"refresh_token"`
}

// ensureTokens gives users[from:to] access tokens valid for at least minLeft:
// those still valid are kept; the others are refreshed (conc at a time), or,
// when the refresh token is refused, logged in with their password, two at a
// time since a login costs an argon2id check. The file is saved after every
// refresh batch, so a rotated refresh token is never lost.
func ensureTokens(ctx context.Context, base string, f *usersFile, path string, idx []int, minLeft time.Duration, conc int, logf func(string, ...any)) error {
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	defer hc.CloseIdleConnections() // the server's file descriptors are counted
	var need []int
	now := time.Now()
	for _, i := range idx {
		if f.Users[i].Access == "" || f.Users[i].AccessExp.Sub(now) < minLeft {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return nil
	}
	logf("refreshing tokens of %d users", len(need))
	start := time.Now()
	var mu sync.Mutex // guards f.Users and relogin
	var relogin []int
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(need) || ctx.Err() != nil {
					return
				}
				i := need[k]
				mu.Lock()
				rt := f.Users[i].Refresh
				mu.Unlock()
				t, status, err := postJSON(ctx, hc, base+"/api/v1/auth/refresh", map[string]string{"refresh_token": rt})
				if status == http.StatusUnauthorized || status == http.StatusForbidden {
					mu.Lock()
					relogin = append(relogin, i)
					mu.Unlock()
					continue
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("refresh %s: %w", f.Users[i].ID, err))
					return
				}
				mu.Lock()
				f.Users[i].Refresh, f.Users[i].Access, f.Users[i].AccessExp = t.RefreshToken, t.AccessToken, t.AccessExpiresAt
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := f.save(path); err != nil {
		return fmt.Errorf("save rotated tokens: %w", err)
	}
	if e := firstErr.Load(); e != nil {
		return e.(error)
	}
	if len(relogin) > 0 {
		logf("%d refresh tokens refused; logging those users in (2 at a time)", len(relogin))
		next.Store(0)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := int(next.Add(1) - 1)
					if k >= len(relogin) || ctx.Err() != nil {
						return
					}
					i := relogin[k]
					t, _, err := postJSON(ctx, hc, base+"/api/v1/auth/login", map[string]string{"username": f.Users[i].ID, "password": f.Users[i].Password})
					if err != nil {
						firstErr.CompareAndSwap(nil, fmt.Errorf("login %s: %w", f.Users[i].ID, err))
						return
					}
					mu.Lock()
					f.Users[i].Refresh, f.Users[i].Access, f.Users[i].AccessExp = t.RefreshToken, t.AccessToken, t.AccessExpiresAt
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if err := f.save(path); err != nil {
			return fmt.Errorf("save tokens: %w", err)
		}
		if e := firstErr.Load(); e != nil {
			return e.(error)
		}
	}
	logf("tokens ready in %.1fs", time.Since(start).Seconds())
	return nil
}

func postJSON(ctx context.Context, hc *http.Client, u string, in any) (tokenAnswer, int, error) {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(b))
	if err != nil {
		return tokenAnswer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return tokenAnswer{}, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return tokenAnswer{}, resp.StatusCode, fmt.Errorf("%s: %d %.200s", u, resp.StatusCode, body)
	}
	var t tokenAnswer
	if err := json.Unmarshal(body, &t); err != nil {
		return t, resp.StatusCode, err
	}
	if t.AccessToken == "" {
		return t, resp.StatusCode, errors.New("answer without access token")
	}
	return t, resp.StatusCode, nil
}
