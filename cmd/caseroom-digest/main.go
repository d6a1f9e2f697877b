// Command caseroom-digest is an example external bot. Once a day, at a set time
// (Beijing time), it reads through caseroom's bot gateway what is due in its
// unit — every open statutory clock, sorted by time left, with its legal
// basis — and posts a digest in a room. It needs nothing but a bot token and
// plain HTTP; see docs/bots.md for how a system administrator makes the bot
// and its token.
//
//	CASEROOM_URL=https://caseroom.example CASEROOM_BOT_TOKEN=crb_… caseroom-digest
//
// Settings (flags override the environment):
//
//	-url   CASEROOM_URL          the server, default http://127.0.0.1:8080
//	       CASEROOM_BOT_TOKEN    the bot token (required; never a flag, so it stays out of ps)
//	-room  CASEROOM_DIGEST_ROOM  the room to post in, default the first room of the token's scope
//	-unit  CASEROOM_DIGEST_UNIT  the unit whose list to read, default the bot's unit
//	-at    CASEROOM_DIGEST_AT    the time of day, default 08:30
//	-once                        post one digest now and exit
//
// The digest's client id is "digest:<unit>:<day>", so a bot restarted on the
// same day, or two copies of it, post one digest a day.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, time.Now, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "caseroom-digest:", err)
		os.Exit(1)
	}
}

// beijing is the zone days and the digest time are counted in.
var beijing = time.FixedZone("CST", 8*60*60)

type config struct {
	url, token, room, unit string
	at                     time.Duration // after midnight, Beijing time
	once                   bool
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("caseroom-digest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var c config
	var at string
	fs.StringVar(&c.url, "url", def("CASEROOM_URL", "http://127.0.0.1:8080"), "the caseroom server")
	fs.StringVar(&c.room, "room", getenv("CASEROOM_DIGEST_ROOM"), "the room to post in (default: the first room of the token's scope)")
	fs.StringVar(&c.unit, "unit", getenv("CASEROOM_DIGEST_UNIT"), "the unit whose due list to read (default: the bot's unit)")
	fs.StringVar(&at, "at", def("CASEROOM_DIGEST_AT", "08:30"), "the time of day to post, Beijing time")
	fs.BoolVar(&c.once, "once", false, "post one digest now and exit")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.token = getenv("CASEROOM_BOT_TOKEN")
	if c.token == "" {
		return c, errors.New("CASEROOM_BOT_TOKEN: the bot token is required")
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("CASEROOM_URL: %q is not an http(s) URL", c.url)
	}
	t, err := time.Parse("15:04", at)
	if err != nil {
		return c, fmt.Errorf("CASEROOM_DIGEST_AT: %q is not a time of day like 08:30", at)
	}
	c.at = time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	c.url = strings.TrimRight(c.url, "/")
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	c := &client{base: cfg.url, token: cfg.token, http: &http.Client{Timeout: 30 * time.Second}}
	var me meView
	if err := c.do(ctx, "GET", "/api/v1/bot/me", nil, &me); err != nil {
		return fmt.Errorf("who am I: %w", err)
	}
	room, unit := cfg.room, cfg.unit
	if room == "" {
		if len(me.Scope.Rooms) == 0 {
			return errors.New("CASEROOM_DIGEST_ROOM: not set, and the token's scope names no room")
		}
		room = me.Scope.Rooms[0]
	}
	if unit == "" {
		unit = me.Unit
	}
	fmt.Fprintf(stdout, "caseroom-digest: bot %s, unit %s, posting in %s\n", me.Bot, unit, room)
	if cfg.once {
		return post(ctx, c, room, unit, now(), stdout)
	}
	for {
		next := nextRun(now(), cfg.at)
		t := time.NewTimer(next.Sub(now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if err := post(ctx, c, room, unit, now(), stdout); err != nil {
			// Tomorrow is another day; an operator reads this line.
			fmt.Fprintln(stderr, "caseroom-digest:", err)
		}
	}
}

// nextRun returns the next instant after now at time of day at, Beijing time.
func nextRun(now time.Time, at time.Duration) time.Time {
	n := now.In(beijing)
	day := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, beijing)
	next := day.Add(at)
	if !next.After(now) {
		next = day.AddDate(0, 0, 1).Add(at)
	}
	return next
}

// post reads unit's due list and posts its digest in room.
func post(ctx context.Context, c *client, room, unit string, now time.Time, stdout io.Writer) error {
	var list dueList
	if err := c.do(ctx, "GET", "/api/v1/bot/due?unit="+url.QueryEscape(unit), nil, &list); err != nil {
		return fmt.Errorf("due list of %s: %w", unit, err)
	}
	day := now.In(beijing).Format(time.DateOnly)
	body := map[string]any{"client_id": "digest:" + unit + ":" + day, "kind": "text", "body": digest(list, unit, now)}
	var m struct {
		Seq int64 `json:"seq"`
	}
	status, err := c.call(ctx, "POST", "/api/v1/bot/rooms/"+url.PathEscape(room)+"/messages", body, &m)
	if err != nil {
		return fmt.Errorf("post digest: %w", err)
	}
	if status == http.StatusOK {
		fmt.Fprintf(stdout, "caseroom-digest: %s digest of %s already posted (seq %d)\n", day, unit, m.Seq)
		return nil
	}
	fmt.Fprintf(stdout, "caseroom-digest: posted the %s digest of %s: %d clocks (seq %d)\n", day, unit, len(list.Items), m.Seq)
	return nil
}

// maxLines is how many clocks a digest lists; the rest are counted.
const maxLines = 30

// digest is the text of the day's digest: counts, then the clocks by time
// left, each with its row and legal basis.
func digest(l dueList, unit string, now time.Time) string {
	var overdue, day, week int
	for _, it := range l.Items {
		switch left := time.Duration(it.LeftSeconds) * time.Second; {
		case it.Overdue:
			overdue++
		case left <= 24*time.Hour:
			day++
		case left <= 7*24*time.Hour:
			week++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "【每日期限摘要】%s %s\n", now.In(beijing).Format(time.DateOnly), unit)
	if len(l.Items) == 0 {
		b.WriteString("本单位当前没有正在计算的法定期限。")
		return b.String()
	}
	fmt.Fprintf(&b, "已超期 %d 件，24小时内届满 %d 件，7日内届满 %d 件，共 %d 件。\n", overdue, day, week, len(l.Items))
	for i, it := range l.Items {
		if i == maxLines {
			fmt.Fprintf(&b, "……另有 %d 件，见“期限”页面。\n", len(l.Items)-maxLines)
			break
		}
		name := it.CaseNumber
		if name == "" {
			name = it.Case
		}
		state := leftText(time.Duration(it.LeftSeconds) * time.Second)
		if it.State == "paused" {
			state += "（已中止计算）"
		}
		fmt.Fprintf(&b, "%d. %s%s：%s（%s，%s），届满 %s，%s\n", i+1, mark(it), name, it.NameZH, it.Clock, it.Basis, dueText(it), state)
	}
	return strings.TrimRight(b.String(), "\n")
}

func mark(it dueItem) string {
	switch {
	case it.Overdue:
		return "【已超期】"
	case it.LeftSeconds <= 24*3600:
		return "【今日】"
	}
	return "【待办】"
}

func dueText(it dueItem) string {
	d := it.Due.In(beijing)
	if d.Hour() == 0 && d.Minute() == 0 && it.LastDay != "" {
		return it.LastDay + " 24:00"
	}
	return d.Format("2006-01-02 15:04")
}

func leftText(d time.Duration) string {
	prefix := "剩余"
	if d <= 0 {
		prefix, d = "超期", -d
	}
	days, hours := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	switch {
	case days > 0:
		return fmt.Sprintf("%s%d天%d小时", prefix, days, hours)
	case hours > 0:
		return fmt.Sprintf("%s%d小时", prefix, hours)
	}
	return fmt.Sprintf("%s%d分钟", prefix, int(d/time.Minute))
}

// The wire format of the gateway, as far as this bot reads it.
type (
	meView struct {
		Bot   string `json:"bot"`
		Unit  string `json:"unit"`
		Scope struct {
			Rooms []string `json:"rooms"`
		} `json:"scope"`
	}
	dueList struct {
		Unit  string    `json:"unit"`
		Items []dueItem `json:"items"`
	}
	dueItem struct {
		Case        string    `json:"case"`
		CaseNumber  string    `json:"case_number"`
		Clock       string    `json:"clock"`
		NameZH      string    `json:"name_zh"`
		Basis       string    `json:"basis"`
		State       string    `json:"state"`
		Due         time.Time `json:"due"`
		LastDay     string    `json:"last_day"`
		LeftSeconds int64     `json:"left_seconds"`
		Overdue     bool      `json:"overdue"`
	}
)

// client speaks to the gateway with the bot token.
type client struct {
	base, token string
	http        *http.Client
}

// An apiError is the gateway's error envelope.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Rule    string `json:"rule"`
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
	if e.Rule != "" {
		s += " (rule " + e.Rule + ")"
	}
	return s
}

func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.call(ctx, method, path, in, out)
	return err
}

func (c *client) call(ctx context.Context, method, path string, in, out any) (int, error) {
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
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode >= 300 {
		var env struct {
			Error apiError `json:"error"`
		}
		json.Unmarshal(b, &env)
		env.Error.Status = res.StatusCode
		return res.StatusCode, &env.Error
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}
