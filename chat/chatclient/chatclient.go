// Package chatclient is a Go client of caseroom's chat: the HTTP API (login,
// rooms, members, posts, history, read markers) and the WebSocket
// (docs/protocol.md), with resume positions tracked per room. Tests, the
// benchmark tool and bots use it.
package chatclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"caseroom/acl"
	"caseroom/chat"
)

// An APIError is an error answer of the HTTP API.
type APIError struct {
	Status  int
	Code    string // stable, e.g. "not_found", "forbidden", "invalid"
	Message string
	Rule    string // for "forbidden": the policy rule that refused
	Field   string // for "invalid": the field at fault
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("chatclient: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Rule != "" {
		s += " (rule " + e.Rule + ")"
	}
	return s
}

// User is the signed-in user as login answers it.
type User struct {
	ID       acl.UserID `json:"id"`
	Username string     `json:"username"`
	Name     string     `json:"name"`
	Unit     acl.UnitID `json:"unit"`
	UnitName string     `json:"unit_name"`
	UnitKind string     `json:"unit_kind"`
	Region   string     `json:"region"`
	Roles    []string   `json:"roles"`
}

// Room is a room as the API shows it.
type Room struct {
	ID        chat.RoomID    `json:"id"`
	Kind      chat.RoomKind  `json:"kind"`
	Name      string         `json:"name"`
	OwnerUnit acl.UnitID     `json:"owner_unit"`
	Region    acl.RegionCode `json:"region"`
	Archived  bool           `json:"archived"`
	CreatedBy acl.UserID     `json:"created_by"`
	CreatedAt time.Time      `json:"created_at"`
	Head      chat.Seq       `json:"head"`
	LastAt    time.Time      `json:"last_at"`
	MyRole    chat.RoomRole  `json:"my_role,omitempty"`
}

// PostRequest is a new message.
type PostRequest struct {
	ClientID string          `json:"client_id,omitempty"` // makes a retried post idempotent
	Kind     chat.Kind       `json:"kind,omitempty"`      // default text
	Body     string          `json:"body,omitempty"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	ReplyTo  chat.Seq        `json:"reply_to,omitempty"`
	Mentions []acl.UserID    `json:"mentions,omitempty"`
}

// HistoryQuery selects a page of a room's log: After or Before a seq, at most
// Limit entries (the server caps it).
type HistoryQuery struct {
	After  chat.Seq
	Before chat.Seq
	Limit  int
}

// A Client talks to one caseroom server as one signed-in user. It refreshes
// its access token shortly before it expires. It is safe for concurrent use.
type Client struct {
	base string
	http *http.Client

	mu         sync.Mutex
	access     string
	accessExp  time.Time
	refresh    string
	refreshExp time.Time
	user       User
}

// Options tune a Client. Zero fields take the defaults stated.
type Options struct {
	HTTPClient *http.Client // default: a client with a 30s timeout
}

type tokens struct {
	AccessToken      string    `json:"access_token"`
	AccessExpiresAt  time.Time `json:"access_expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	User             User      `json:"user"`
}

// Login signs username in at baseURL (e.g. "http://127.0.0.1:8080").
func Login(ctx context.Context, baseURL, username, password string) (*Client, error) {
	return LoginWith(ctx, baseURL, username, password, Options{})
}

// LoginWith is Login with options.
func LoginWith(ctx context.Context, baseURL, username, password string, opts Options) (*Client, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: hc}
	var t tokens
	if err := c.do(ctx, "POST", "/api/v1/auth/login", "", map[string]string{"username": username, "password": password}, &t); err != nil {
		return nil, err
	}
	c.set(t)
	return c, nil
}

// FromRefreshToken returns a client signed in with a refresh token kept from an
// earlier login (it is rotated at once), so that the benchmark and bots need
// not log in again.
func FromRefreshToken(ctx context.Context, baseURL, refreshToken string, opts Options) (*Client, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: hc, refresh: refreshToken}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) set(t tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access, c.accessExp, c.refresh, c.refreshExp = t.AccessToken, t.AccessExpiresAt, t.RefreshToken, t.RefreshExpiresAt
	if t.User.ID != "" {
		c.user = t.User
	}
}

// User returns the signed-in user.
func (c *Client) User() User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// RefreshToken returns the current refresh token (it rotates on each refresh).
func (c *Client) RefreshToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh
}

// Refresh trades the refresh token for new tokens.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	rt := c.refresh
	c.mu.Unlock()
	var t tokens
	if err := c.do(ctx, "POST", "/api/v1/auth/refresh", "", map[string]string{"refresh_token": rt}, &t); err != nil {
		return err
	}
	c.set(t)
	return nil
}

// AccessToken returns a valid access token, refreshing it first when it
// expires within a minute.
func (c *Client) AccessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	tk, exp := c.access, c.accessExp
	c.mu.Unlock()
	if tk != "" && time.Until(exp) > time.Minute {
		return tk, nil
	}
	if err := c.Refresh(ctx); err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.access, nil
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path, token string, in, out any) error {
	_, err := c.doStatus(ctx, method, path, token, in, out)
	return err
}

func (c *Client) doStatus(ctx context.Context, method, path, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("chatclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("chatclient: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code, Message, Rule, Field string
			} `json:"error"`
		}
		json.Unmarshal(b, &e)
		return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, Rule: e.Error.Rule, Field: e.Error.Field}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("chatclient: %s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// authed sends an authenticated request; on a 401 token_expired it refreshes
// once and tries again.
func (c *Client) authed(ctx context.Context, method, path string, in, out any) (int, error) {
	tk, err := c.AccessToken(ctx)
	if err != nil {
		return 0, err
	}
	status, err := c.doStatus(ctx, method, path, tk, in, out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Code == "token_expired" {
		if err := c.Refresh(ctx); err != nil {
			return 0, err
		}
		tk, _ = c.AccessToken(ctx)
		return c.doStatus(ctx, method, path, tk, in, out)
	}
	return status, err
}

func roomPath(room chat.RoomID) string { return "/api/v1/rooms/" + url.PathEscape(string(room)) }

// CreateRoom creates a group room with the caller as owner and members.
func (c *Client) CreateRoom(ctx context.Context, name string, members []acl.UserID) (Room, error) {
	var r Room
	if members == nil {
		members = []acl.UserID{}
	}
	_, err := c.authed(ctx, "POST", "/api/v1/rooms", map[string]any{"name": name, "members": members}, &r)
	return r, err
}

// AddMembers adds users to room with role (default member) and returns the
// member.add entry.
func (c *Client) AddMembers(ctx context.Context, room chat.RoomID, users []acl.UserID, role chat.RoomRole) (chat.MessageView, error) {
	var m chat.MessageView
	if role == "" {
		role = chat.Member
	}
	_, err := c.authed(ctx, "POST", roomPath(room)+"/members", map[string]any{"users": users, "role": role}, &m)
	return m, err
}

// RemoveMember removes user from room and returns the member.remove entry.
func (c *Client) RemoveMember(ctx context.Context, room chat.RoomID, user acl.UserID) (chat.MessageView, error) {
	var m chat.MessageView
	_, err := c.authed(ctx, "DELETE", roomPath(room)+"/members/"+url.PathEscape(string(user)), nil, &m)
	return m, err
}

// Post posts a message. dup reports that the client id had been posted
// before, and m is then that first entry.
func (c *Client) Post(ctx context.Context, room chat.RoomID, p PostRequest) (m chat.MessageView, dup bool, err error) {
	status, err := c.authed(ctx, "POST", roomPath(room)+"/messages", p, &m)
	return m, status == http.StatusOK, err
}

// Edit gives message seq of room a new body and returns the edit entry.
func (c *Client) Edit(ctx context.Context, room chat.RoomID, seq chat.Seq, body string) (chat.MessageView, error) {
	var m chat.MessageView
	_, err := c.authed(ctx, "PATCH", roomPath(room)+"/messages/"+strconv.FormatInt(int64(seq), 10), map[string]string{"body": body}, &m)
	return m, err
}

// Retract retracts message seq of room and returns the retraction entry.
func (c *Client) Retract(ctx context.Context, room chat.RoomID, seq chat.Seq) (chat.MessageView, error) {
	var m chat.MessageView
	_, err := c.authed(ctx, "DELETE", roomPath(room)+"/messages/"+strconv.FormatInt(int64(seq), 10), nil, &m)
	return m, err
}

// History returns a page of room's log, in ascending seq order.
func (c *Client) History(ctx context.Context, room chat.RoomID, q HistoryQuery) ([]chat.MessageView, error) {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatInt(int64(q.After), 10))
	}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(int64(q.Before), 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := roomPath(room) + "/messages"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out struct {
		Messages []chat.MessageView `json:"messages"`
	}
	_, err := c.authed(ctx, "GET", path, nil, &out)
	return out.Messages, err
}

// MarkRead moves the caller's read marker in room to seq and returns the
// marker stored.
func (c *Client) MarkRead(ctx context.Context, room chat.RoomID, seq chat.Seq) (chat.Seq, error) {
	var out struct {
		Seq chat.Seq `json:"seq"`
	}
	_, err := c.authed(ctx, "POST", roomPath(room)+"/read", map[string]chat.Seq{"seq": seq}, &out)
	return out.Seq, err
}
