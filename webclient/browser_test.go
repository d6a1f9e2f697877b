package webclient

// Browser tests: the real caseroomd binary (serve -demo on a fresh SQLite
// file) driven through Debian's Chromium by chromedp. They need
// CASEROOM_TEST_CHROMIUM (the browser's path); unset, they are skipped, or fail
// when CASEROOM_TEST_REQUIRE is set. CASEROOM_TEST_BINARY may name an already
// built caseroomd; otherwise the test builds one. Screenshots go to
// test-output/webclient/ at the module root.
//
//	CASEROOM_TEST_CHROMIUM=/usr/bin/chromium go test -run TestBrowser -v ./webclient/

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"caseroom/acl/pgdb/pgdbtest"
)

//go:embed testdata/axe/axe.min.js
var axeSource string

// outDir is where screenshots go: test-output/webclient at the module root.
func outDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "test-output", "webclient")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The server.

type account struct{ Username, Password, Name, Unit, Roles string }

type server struct {
	t        *testing.T
	bin      string
	addr     string
	url      string
	env      []string
	cmd      *exec.Cmd
	done     chan struct{}
	mu       sync.Mutex
	out      bytes.Buffer // stdout and stderr of every run, for failures
	accounts map[string]account
}

// mustBuildServer builds caseroomd once per test binary run, or takes
// CASEROOM_TEST_BINARY.
func mustBuildServer(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("CASEROOM_TEST_BINARY"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "caseroomd")
	cmd := exec.Command("go", "build", "-o", bin, "caseroom/cmd/caseroomd")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build caseroomd: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mustStartServer runs `caseroomd serve -demo` on a free port and a fresh
// SQLite file, and reads the demo accounts it prints.
func mustStartServer(t *testing.T, bin string, env ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, bin: bin, addr: freeAddr(t), accounts: map[string]account{}}
	s.url = "http://" + s.addr
	s.env = append(os.Environ(), "CASEROOM_ADDR="+s.addr, "CASEROOM_DATABASE=sqlite:"+filepath.Join(dir, "c.db"),
		"CASEROOM_ARGON2_MEMORY=64", "CASEROOM_LOG_LEVEL=warn")
	s.env = append(s.env, env...)
	s.start()
	if len(s.accounts) < 10 {
		t.Fatalf("caseroomd -demo printed %d accounts; output:\n%s", len(s.accounts), s.output())
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// start runs the server and returns once it answers /healthz.
func (s *server) start() {
	t := s.t
	t.Helper()
	cmd := exec.Command(s.bin, "serve", "-demo")
	cmd.Env = s.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.out.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caseroomd: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	listening := make(chan struct{})
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		inTable := false
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			f := strings.Fields(line)
			switch {
			case strings.HasPrefix(line, "USERNAME"):
				inTable = true
			case strings.HasPrefix(line, "caseroomd listening on"):
				inTable = false
				once.Do(func() { close(listening) })
			case inTable && len(f) >= 5:
				s.mu.Lock()
				s.accounts[f[0]] = account{Username: f[0], Password: f[1], Name: strings.Join(f[2:len(f)-2], " "), Unit: f[len(f)-2], Roles: f[len(f)-1]}
				s.mu.Unlock()
			}
		}
		cmd.Wait()
	}()
	select {
	case <-listening:
	case <-s.done:
		t.Fatalf("caseroomd exited before listening:\n%s", s.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("caseroomd did not listen within 60s:\n%s", s.output())
	}
	for range 100 {
		res, err := http.Get(s.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("caseroomd does not answer /healthz:\n%s", s.output())
}

// stop ends the server with SIGTERM (a graceful shutdown) and waits for it.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (s *server) account(name string) account {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[name]
	if !ok {
		s.t.Fatalf("no demo account %q", name)
	}
	return a
}

// apiCall makes one API request as the holder of token and decodes the answer
// into out (when not nil); it returns the status.
func (s *server) apiCall(t *testing.T, token, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+"/api/v1"+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, b, err)
		}
	}
	return res.StatusCode
}

// mustLogin signs username in over the API and returns an access token.
func (s *server) mustLogin(t *testing.T, username string) string {
	t.Helper()
	a := s.account(username)
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if st := s.apiCall(t, "", "POST", "/auth/login", map[string]string{"username": a.Username, "password": a.Password}, &out); st != 200 {
		t.Fatalf("login %s = %d", username, st)
	}
	return out.AccessToken
}

// mustCreateRoom creates a group room owned by owner with members and returns its id.
func (s *server) mustCreateRoom(t *testing.T, owner, name string, members ...string) string {
	t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	if members == nil {
		members = []string{}
	}
	if st := s.apiCall(t, s.mustLogin(t, owner), "POST", "/rooms", map[string]any{"name": name, "members": members}, &out); st != 201 {
		t.Fatalf("create room %q = %d", name, st)
	}
	return out.ID
}

type apiMessage struct {
	Seq       int64    `json:"seq"`
	Kind      string   `json:"kind"`
	Body      string   `json:"body"`
	Sender    string   `json:"sender"`
	ReplyTo   int64    `json:"reply_to"`
	Edited    int64    `json:"edited"`
	Retracted int64    `json:"retracted"`
	ClientID  string   `json:"client_id"`
	Mentions  []string `json:"mentions"`
}

func (s *server) history(t *testing.T, token, room string) []apiMessage {
	t.Helper()
	var out struct {
		Messages []apiMessage `json:"messages"`
	}
	if st := s.apiCall(t, token, "GET", "/rooms/"+room+"/messages?limit=200", nil, &out); st != 200 {
		t.Fatalf("history of %s = %d", room, st)
	}
	return out.Messages
}

// The browser.

type browserTab struct {
	t    *testing.T
	name string
	ctx  context.Context
	dl   string // download directory

	mu       sync.Mutex
	problems []string         // console errors, exceptions, CSP violations
	allow    []*regexp.Regexp // browser-log errors expected at the moment
}

// newBrowser starts a Chromium of its own (own profile, so own storage) with
// a viewport of w×h; mobile emulates a phone.
func newBrowser(t *testing.T, name string, w, h int, mobile bool) *browserTab {
	t.Helper()
	chromium := pgdbtest.NeedEnv(t, "CASEROOM_TEST_CHROMIUM")
	profile := t.TempDir()
	dl := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(w, h),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "zh-CN"),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browserTab{t: t, name: name, ctx: ctx, dl: dl}
	if noCasework {
		// A server without the casework API answers the client's probe with 404.
		b.allow = append(b.allow, regexp.MustCompile(`status of 404 .*/api/v1/procedures`))
	}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser, no timeout
		t.Fatalf("%s: start chromium: %v", name, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.note(m)
		}
	}()
	scale := 1.0
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: int64(w), Height: int64(h), DeviceScaleFactor: scale, Mobile: mobile})
		return err
	}))
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl}); err != nil {
		t.Fatalf("%s: download behaviour: %v", name, err)
	}
	return b
}

// note records a console message that is a problem: an exception, a
// console.error or warning, or an error or security entry of the browser log
// (CSP violations among them) that is not expected now.
func (b *browserTab) note(m chromedp.ConsoleMessage) {
	problem := m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Source == "security"
	if m.Source != "" && m.Source != "security" && m.Type != chromedp.ConsoleError {
		problem = false
	}
	if strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Trusted Type") {
		problem = true
	}
	if !problem {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.Source == "network" || m.Source == "other" || m.Source == "" {
		for _, re := range b.allow {
			if re.MatchString(m.Text + " " + m.URL) {
				return
			}
		}
	}
	b.problems = append(b.problems, fmt.Sprintf("%s [%s %s] %s (%s:%d)", b.name, m.Type, m.Source, m.Text, m.URL, m.Line+1))
}

// expect allows browser-log errors matching the patterns until the returned
// func is called.
func (b *browserTab) expect(patterns ...string) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var res []*regexp.Regexp
	for _, p := range patterns {
		res = append(res, regexp.MustCompile(p))
	}
	old := b.allow
	b.allow = append(slices.Clone(old), res...)
	return func() {
		time.Sleep(300 * time.Millisecond) // let late events of the expected kind arrive
		b.mu.Lock()
		b.allow = old
		b.mu.Unlock()
	}
}

// mustBeClean fails the test if the page logged a problem.
func (b *browserTab) mustBeClean() {
	b.t.Helper()
	time.Sleep(200 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("console: %s", p)
	}
	b.problems = nil
}

func (b *browserTab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%v", err)
	}
}

func (b *browserTab) fail(format string, args ...any) {
	b.t.Helper()
	b.shot("FAILED-" + strings.ReplaceAll(b.t.Name(), "/", "-") + "-" + b.name)
	b.t.Fatalf(b.name+": "+format, args...)
}

func evalAs[T any](b *browserTab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls expr (a JavaScript expression) until it is true. chromedp's
// own Poll compiles its predicate with new Function, which the page's CSP
// refuses, so the polling happens from here.
func (b *browserTab) waitFor(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.fail("waited %v for %s (%s): last error %v", timeout, what, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shot saves a screenshot of the viewport as test-output/webclient/name.png.
func (b *browserTab) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("%s: screenshot %s: %v", b.name, name, err)
		return
	}
	p := filepath.Join(outDir(b.t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", p, err)
		return
	}
	b.t.Logf("screenshot %s", p)
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (b *browserTab) text(sel string) string {
	b.t.Helper()
	return evalAs[string](b, `(document.querySelector(`+js(sel)+`)||{}).textContent||""`)
}

// login signs in through the login form and waits for the room list.
func (b *browserTab) login(s *server, username string) {
	b.t.Helper()
	a := s.account(username)
	b.do(chromedp.Navigate(s.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
	b.do(chromedp.SendKeys(chromedp.CSS("#login-username"), a.Username),
		chromedp.SendKeys(chromedp.CSS("#login-password"), a.Password),
		chromedp.Click(chromedp.CSS(".login-form button[type=submit]")))
	b.waitFor("the room list", `document.querySelector("#room-list")`, 15*time.Second)
}

// openRoom clicks the room in the list and waits for its log.
func (b *browserTab) openRoom(room string) {
	b.t.Helper()
	sel := `.room-item[data-room="` + room + `"]`
	b.waitFor("room "+room+" in the list", `document.querySelector(`+js(sel)+`)`, 15*time.Second)
	b.click(sel)
	b.waitFor("the room to open", `location.hash.includes(`+js(room)+`) && !document.querySelector(".room-body").hidden`, 10*time.Second)
}

// logText is the text of the message log.
const logText = `document.querySelector("#message-log").textContent`

// entryWith is a JS expression for the newest log entry whose own text (not
// a quote of another) contains s.
func entryWith(s string) string {
	return `[...document.querySelectorAll("#message-log [data-seq]")].reverse().find(e => (e.querySelector(".msg-body, .file-card, .card") || e).textContent.includes(` + js(s) + `))`
}

// press types one key the way a keyboard does: a keyDown that carries the
// text, so that a page that handles the keydown (preventDefault) gets no
// character. chromedp's KeyEvent sends the character as a separate "char"
// event, which lands in whatever has the focus after the handler ran.
func press(key, code string, vk int64, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code,
			WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk, Text: text, UnmodifiedText: text}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: key, Code: code, WindowsVirtualKeyCode: vk, NativeVirtualKeyCode: vk}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// enter presses Enter.
func enter() chromedp.Action[chromedp.Void] { return press("Enter", "Enter", 13, "\r") }

func TestBrowser(t *testing.T) {
	pgdbtest.NeedEnv(t, "CASEROOM_TEST_CHROMIUM")
	bin := mustBuildServer(t)
	srv := mustStartServer(t, bin, "CASEROOM_LOGIN_MAX_FAILURES=3", "CASEROOM_ACCESS_TTL=1m")
	noCasework = !srv.hasCasework(t)
	const (
		police = "police.150102.officer1"
		pros   = "procuratorate.150102.officer1"
	)

	t.Run("LoginLockout", func(t *testing.T) {
		b := newBrowser(t, "lockout", 1366, 768, false)
		done := b.expect(`status of 40[13]`)
		a := srv.account("court.150102.clerk1")
		b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
		b.shot("login")
		b.do(chromedp.SendKeys(chromedp.CSS("#login-username"), a.Username))
		for i := 0; ; i++ {
			b.do(chromedp.SendKeys(chromedp.CSS("#login-password"), "wrong-password-"+fmt.Sprint(i)),
				chromedp.Click(chromedp.CSS(".login-form button[type=submit]")))
			b.waitFor("an error", `document.querySelector("#login-error").textContent && !document.querySelector(".login-form button").disabled`, 10*time.Second)
			msg := b.text("#login-error")
			if strings.Contains(msg, "锁定") {
				if !regexp.MustCompile(`\d{4}.\d{2}.\d{2}.*\d{2}:\d{2}`).MatchString(msg) {
					t.Errorf("the lockout message %q does not say until when", msg)
				}
				break
			}
			if !strings.Contains(msg, "用户名或密码错误") {
				t.Fatalf("attempt %d: error %q, want the wrong-password message", i+1, msg)
			}
			if i >= 4 {
				t.Fatalf("no lockout after %d failures (CASEROOM_LOGIN_MAX_FAILURES=3)", i+1)
			}
			b.evalClear("#login-error")
		}
		b.shot("login-locked")
		// Even the right password is refused while locked.
		b.do(chromedp.SendKeys(chromedp.CSS("#login-password"), a.Password), chromedp.Click(chromedp.CSS(".login-form button[type=submit]")))
		b.waitFor("the lockout again", `document.querySelector("#login-error").textContent.includes("锁定")`, 10*time.Second)
		done()
		b.mustBeClean()
	})

	t.Run("ChatTwoSessions", func(t *testing.T) {
		room := srv.mustCreateRoom(t, police, "新城区刑事案件协调群", pros)
		p := newBrowser(t, "police", 1366, 768, false)
		q := newBrowser(t, "prosecutor", 1366, 768, false)
		p.login(srv, police)
		q.login(srv, pros)
		p.openRoom(room)

		// A message with a mention picked from the list.
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "@检察官1"))
		p.waitFor("the mention list", `!document.querySelector("#mention-list").hidden`, 15*time.Second)
		p.do(enter())
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "请于今日内补充证据材料"), enter())
		p.waitFor("the message in the log", entryWith("请于今日内补充证据材料")+`?.querySelector(".sender")`, 10*time.Second)
		if h := srv.history(t, srv.mustLogin(t, police), room); h[len(h)-1].Body != "@新城区检察院 检察官1 请于今日内补充证据材料" || !slices.Equal(h[len(h)-1].Mentions, []string{pros}) {
			t.Errorf("stored %+v, want the text with the mention of %s", h[len(h)-1], pros)
		}

		// It arrives live in the prosecutor's list: unread and mentioned.
		item := `document.querySelector(` + js(`.room-item[data-room="`+room+`"]`) + `)`
		q.waitFor("the unread count", item+`?.querySelector(".unread")?.textContent.includes("1")`, 10*time.Second)
		q.waitFor("the @me mark", item+`?.querySelector(".at-me")`, 5*time.Second)
		q.shot("room-list")
		q.openRoom(room)
		msg := entryWith("请于今日内补充证据材料")
		q.waitFor("the message", msg, 10*time.Second)
		if got := evalAs[string](q, msg+`.querySelector(".sender").textContent`); got != srv.account(police).Name {
			t.Errorf("sender %q, want %q", got, srv.account(police).Name)
		}
		q.waitFor("the sender's unit by name", msg+`.querySelector(".unit").textContent === "呼和浩特市公安局新城区分局"`, 5*time.Second)
		q.waitFor("the time", msg+`.querySelector("time[datetime]")`, 1*time.Second)
		q.waitFor("the mention highlight", msg+`.querySelector(".mention")?.textContent.includes("检察官1")`, 5*time.Second)
		if evalAs[bool](q, item+`.querySelector(".unread") !== null`) {
			t.Errorf("the unread count stays after opening the room")
		}

		// Read receipts: the police officer sees it read.
		p.waitFor("全部已读", entryWith("请于今日内补充证据材料")+`?.querySelector(".receipt")?.textContent === "全部已读"`, 10*time.Second)

		// Typing shows on the other side.
		q.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "收到"))
		p.waitFor("the typing line", `document.querySelector(".typing").textContent.includes("检察官1")`, 5*time.Second)

		// A reply, through the message's Reply button.
		q.do(chromedp.Evaluate[chromedp.Void](msg + `.focus()`))
		q.do(chromedp.Click(chromedp.CSS(`#message-log article[data-seq] .msg-actions button`)))
		q.waitFor("the reply bar", `document.querySelector(".composer-bars .bar")`, 5*time.Second)
		q.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "，今天下班前补齐。"), enter())
		reply := entryWith("今天下班前补齐")
		p.waitFor("the reply", reply+`?.querySelector(".quote")?.textContent.includes("请于今日内补充证据材料")`, 10*time.Second)
		q.waitFor("1 人未读 turns read", entryWith("今天下班前补齐")+`?.querySelector(".receipt")?.textContent === "全部已读"`, 10*time.Second)

		// An edit: the prosecutor sees the new text and 已编辑.
		p.do(chromedp.Evaluate[chromedp.Void](entryWith("请于今日内补充证据材料") + `.focus()`))
		p.do(chromedp.Evaluate[chromedp.Void](`[...` + entryWith("请于今日内补充证据材料") + `.querySelectorAll(".msg-actions button")].find(b => b.textContent === "编辑").click()`))
		p.waitFor("the edit bar", `document.querySelector(".composer-bars .editing")`, 5*time.Second)
		p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#composer-input").select()`))
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "@检察官1 请于明日内补充证据材料"), enter())
		q.waitFor("the edited message", entryWith("请于明日内补充证据材料")+`?.querySelector(".edited")?.textContent === "已编辑"`, 10*time.Second)

		// A retraction: the prosecutor sees the notice instead of the text.
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "这条消息发错了"), enter())
		q.waitFor("the message to retract", entryWith("这条消息发错了"), 10*time.Second)
		p.waitFor("it is stored", entryWith("这条消息发错了")+`?.querySelector(".msg-actions")`, 10*time.Second)
		p.do(chromedp.Evaluate[chromedp.Void](`[...` + entryWith("这条消息发错了") + `.querySelectorAll(".msg-actions button")].find(b => b.textContent === "撤回").click()`))
		p.waitFor("the confirmation", `document.querySelector("dialog.confirm[open]")`, 5*time.Second)
		p.do(chromedp.Click(chromedp.CSS("dialog.confirm button.primary")))
		q.waitFor("the retraction notice", logText+`.includes("民警1 撤回了一条消息") && !`+logText+`.includes("这条消息发错了")`, 10*time.Second)
		p.waitFor("the own retraction notice", logText+`.includes("你撤回了一条消息")`, 10*time.Second)

		// An attachment: uploaded with progress, downloaded on the other side.
		file := filepath.Join(t.TempDir(), "现场勘验笔录.txt")
		content := bytes.Repeat([]byte("勘验笔录 "), 40000)
		os.WriteFile(file, content, 0o644)
		p.do(chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{file}))
		q.waitFor("the file message", `[...document.querySelectorAll("#message-log .file-name")].some(e => e.textContent === "现场勘验笔录.txt")`, 20*time.Second)
		q.do(chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("#message-log .file-card")].find(e => e.textContent.includes("现场勘验笔录.txt")).querySelector("button").click()`))
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := os.ReadFile(filepath.Join(q.dl, "现场勘验笔录.txt"))
			if err == nil && bytes.Equal(got, content) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the download did not arrive intact (err %v, %d bytes of %d)", err, len(got), len(content))
			}
			time.Sleep(100 * time.Millisecond)
		}

		p.shot("room-1366x768")
		q.shot("room-prosecutor-1366x768")

		// What the browsers show is what the server holds, with no gap and no duplicate.
		tok := srv.mustLogin(t, pros)
		h := srv.history(t, tok, room)
		var want []int64
		for _, m := range h {
			if m.Kind != "edit" && m.Kind != "retract" {
				want = append(want, m.Seq)
			}
		}
		for _, b := range []*browserTab{p, q} {
			got := evalAs[[]int64](b, `[...document.querySelectorAll("#message-log [data-seq]")].map(e => +e.dataset.seq)`)
			if !slices.Equal(got, want) {
				t.Errorf("%s shows seqs %v, the server has %v", b.name, got, want)
			}
		}
		p.mustBeClean()
		q.mustBeClean()
	})

	t.Run("EnglishSwitch", func(t *testing.T) {
		b := newBrowser(t, "english", 1366, 768, false)
		b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
		b.do(chromedp.Click(chromedp.CSS(".lang-switch")))
		b.waitFor("the English login page", `document.documentElement.lang === "en" && document.querySelector(".login-form button").textContent === "Sign in"`, 5*time.Second)
		b.login(srv, police)
		b.waitFor("English after sign-in", `document.querySelector("#logout").textContent === "Sign out"`, 5*time.Second)
		room := srv.mustCreateRoom(t, police, "English test room")
		b.openRoom(room)
		b.waitFor("the English composer", `document.querySelector("#send").textContent === "Send" && document.querySelector("#composer-input").placeholder.startsWith("Type a message")`, 5*time.Second)
		b.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "hello"), enter())
		b.waitFor("the message", entryWith("hello"), 10*time.Second)
		b.shot("room-english")
		b.do(chromedp.Click(chromedp.CSS("#lang-switch")))
		b.waitFor("Chinese again", `document.documentElement.lang === "zh-CN" && document.querySelector("#logout").textContent === "退出登录" && document.querySelector("#send").textContent === "发送"`, 5*time.Second)
		b.mustBeClean()
	})

	t.Run("KeyboardOnly", func(t *testing.T) {
		room := srv.mustCreateRoom(t, police, "键盘操作测试群", pros)
		tok := srv.mustLogin(t, police)
		srv.apiCall(t, tok, "POST", "/rooms/"+room+"/messages", map[string]any{"client_id": "kb-1", "kind": "text", "body": "第一条：请核对卷宗目录"}, nil)
		srv.apiCall(t, tok, "POST", "/rooms/"+room+"/messages", map[string]any{"client_id": "kb-2", "kind": "text", "body": "第二条：明天上午开会"}, nil)
		b := newBrowser(t, "keyboard", 1366, 768, false)
		a := srv.account(pros)
		b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
		b.waitFor("focus in the username box", `document.activeElement.id === "login-username"`, 5*time.Second)
		b.do(chromedp.KeyEvent(a.Username), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(a.Password), enter())
		b.waitFor("the room list", `document.querySelector("#room-list")`, 15*time.Second)
		// Tab to the room, Enter opens it, focus lands in the composer.
		target := `document.activeElement.dataset.room === ` + js(room)
		b.tabUntil(target, false, 40)
		b.do(enter())
		b.waitFor("the composer focused", `document.activeElement.id === "composer-input"`, 10*time.Second)
		b.waitFor("the history", entryWith("第二条：明天上午开会"), 10*time.Second)
		b.do(chromedp.KeyEvent("收到，准时参加"), enter())
		b.waitFor("the message sent", entryWith("收到，准时参加")+`?.querySelector(".sender")`, 10*time.Second)
		// Back into the log, up two messages, R replies.
		b.tabUntil(`document.activeElement.matches("#message-log article")`, true, 10)
		b.do(chromedp.KeyEvent(kb.ArrowUp), chromedp.KeyEvent(kb.ArrowUp))
		b.waitFor("the first message focused", `document.activeElement.textContent.includes("第一条")`, 5*time.Second)
		b.do(press("r", "KeyR", 82, "r"))
		b.waitFor("reply mode in the composer", `document.activeElement.id === "composer-input" && document.querySelector(".composer-bars .bar")`, 5*time.Second)
		b.do(chromedp.KeyEvent("目录已核对"), enter())
		b.waitFor("the reply", entryWith("目录已核对")+`?.querySelector(".quote")?.textContent.includes("第一条")`, 10*time.Second)
		// Up arrow in the empty composer edits the last own message.
		b.do(chromedp.KeyEvent(kb.ArrowUp))
		b.waitFor("edit mode", `document.querySelector(".composer-bars .editing") && document.activeElement.value === "目录已核对"`, 5*time.Second)
		b.do(chromedp.KeyEvent("，无缺页"), enter())
		b.waitFor("the edit", entryWith("目录已核对，无缺页")+`?.querySelector(".edited")`, 10*time.Second)
		b.shot("keyboard-flow")
		msgs := srv.history(t, tok, room)
		last := msgs[len(msgs)-1]
		if last.Kind != "edit" || last.Body != "目录已核对，无缺页" {
			t.Errorf("the last entry is %+v, want the edit", last)
		}
		b.mustBeClean()
	})

	t.Run("Accessibility", func(t *testing.T) {
		room := srv.mustCreateRoom(t, police, "无障碍检查群", pros)
		tok := srv.mustLogin(t, police)
		srv.apiCall(t, tok, "POST", "/rooms/"+room+"/messages", map[string]any{"client_id": "a11y-1", "kind": "text", "body": "请查收材料", "mentions": []string{pros}}, nil)
		var caseRoom string
		if !noCasework {
			var c struct {
				ID string `json:"id"`
			}
			if st := srv.apiCall(t, tok, "POST", "/cases", map[string]any{"procedure": "criminal", "transition": "receive", "title": "无障碍检查案",
				"parties": []map[string]string{{"id": "p1", "role": "suspect", "name": "李某"}}, "handlers": []string{police}}, &c); st != 201 {
				t.Fatalf("open a case = %d", st)
			}
			caseRoom = c.ID
		}
		for _, size := range [][2]int{{1366, 768}, {390, 844}} {
			b := newBrowser(t, fmt.Sprintf("axe-%dx%d", size[0], size[1]), size[0], size[1], size[0] < 500)
			b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
			b.axe("login")
			b.login(srv, police)
			b.axe("room list")
			b.openRoom(room)
			b.waitFor("the message", entryWith("请查收材料"), 10*time.Second)
			b.axe("room")
			if !noCasework {
				b.do(chromedp.Navigate(srv.url + "/#/r/" + caseRoom))
				b.waitFor("the case card", `document.querySelector("#message-log .card")`, 15*time.Second)
				if size[0] < 500 {
					b.click("#panel-toggle")
				}
				b.waitFor("the case panel", `!document.querySelector("#case-panel").hidden && document.querySelector("#case-panel button[data-approval]")`, 10*time.Second)
				b.axe("case room with its panel")
				b.noHScroll(fmt.Sprintf("case panel %dx%d", size[0], size[1]))
				b.shot(fmt.Sprintf("case-panel-%dx%d", size[0], size[1]))
				b.click("#case-panel button[data-approval]")
				b.waitFor("the approval dialog", `document.querySelector("dialog.case-dialog[open]")`, 5*time.Second)
				b.axe("approval dialog")
				b.do(press("Escape", "Escape", 27, ""))
				b.waitFor("the dialog closed by Escape", `!document.querySelector("dialog.case-dialog")`, 5*time.Second)
			}
			b.mustBeClean()
		}
	})

	t.Run("NoHorizontalScroll", func(t *testing.T) {
		room := srv.mustCreateRoom(t, police, "一个名字非常非常长的协调群，用来检查窄屏上是否出现横向滚动条的情况", pros)
		tok := srv.mustLogin(t, police)
		srv.apiCall(t, tok, "POST", "/rooms/"+room+"/messages", map[string]any{"client_id": "wide-1", "kind": "text",
			"body": "一段很长且没有空格的文字" + strings.Repeat("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)}, nil)
		for _, size := range [][2]int{{1366, 768}, {390, 844}} {
			name := fmt.Sprintf("%dx%d", size[0], size[1])
			b := newBrowser(t, "layout-"+name, size[0], size[1], size[0] < 500)
			b.do(chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
			b.noHScroll("login " + name)
			b.login(srv, police)
			b.noHScroll("room list " + name)
			b.shot("room-list-" + name)
			b.openRoom(room)
			b.waitFor("the long message", entryWith("ABCDEFG"), 10*time.Second)
			b.noHScroll("room " + name)
			b.shot("room-" + name)
			b.mustBeClean()
		}
	})

	t.Run("TokenRefreshKeepsDraft", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for the one-minute access token to be refreshed")
		}
		room := srv.mustCreateRoom(t, police, "会话续期测试群")
		b := newBrowser(t, "refresh", 1366, 768, false)
		b.login(srv, police)
		b.openRoom(room)
		first := evalAs[string](b, `JSON.parse(sessionStorage.getItem("caseroom.session")).access`)
		b.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "一段还没有发出的草稿"))
		b.waitFor("the access token refreshed", `JSON.parse(sessionStorage.getItem("caseroom.session")).access !== `+js(first), 75*time.Second)
		if v := evalAs[string](b, `document.querySelector("#composer-input").value`); v != "一段还没有发出的草稿" {
			t.Errorf("after the refresh the composer holds %q", v)
		}
		b.do(enter())
		b.waitFor("the draft sent", entryWith("一段还没有发出的草稿")+`?.querySelector(".sender")`, 10*time.Second)

		// The session ends elsewhere (signed out with its refresh token): the
		// next refresh fails, a dialog asks for the password over the page, and
		// what was typed meanwhile is still there afterwards.
		done := b.expect(`status of 401`)
		refresh := evalAs[string](b, `JSON.parse(sessionStorage.getItem("caseroom.session")).refresh`)
		if st := srv.apiCall(t, "", "POST", "/auth/logout", map[string]string{"refresh_token": refresh}, nil); st != 204 {
			t.Fatalf("logout = %d", st)
		}
		b.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "会话过期时正在输入的内容"))
		b.waitFor("the sign-in dialog", `document.querySelector("dialog.relogin[open]")`, 75*time.Second)
		b.shot("session-expired")
		b.do(chromedp.SendKeys(chromedp.CSS("#relogin-password"), srv.account(police).Password), enter())
		b.waitFor("the dialog gone", `!document.querySelector("dialog.relogin")`, 10*time.Second)
		done()
		if v := evalAs[string](b, `document.querySelector("#composer-input").value`); v != "会话过期时正在输入的内容" {
			t.Errorf("after signing in again the composer holds %q", v)
		}
		b.do(chromedp.Focus(chromedp.CSS("#composer-input")), enter())
		b.waitFor("the text sent in the new session", entryWith("会话过期时正在输入的内容")+`?.querySelector(".sender")`, 10*time.Second)
		b.mustBeClean()
	})

	t.Run("CaseTransferReturnAccept", func(t *testing.T) {
		if noCasework {
			t.Skip("this caseroomd has no casework API yet")
		}
		const leader, supervisor = "police.150102.leader1", "committee.150102.supervisor1"
		p := newBrowser(t, "police-case", 1366, 768, false)
		q := newBrowser(t, "prosecutor-case", 1366, 768, false)
		p.login(srv, police)
		q.login(srv, pros)

		// The officer opens a case.
		p.waitFor("the new-case button", `!document.querySelector("#new-case").hidden`, 10*time.Second)
		p.click("#new-case")
		p.waitFor("the open dialog", `document.querySelector("dialog.case-dialog[open] select")`, 5*time.Second)
		p.do(chromedp.SetValue(chromedp.CSS("dialog.case-dialog select"), "criminal"))
		p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("dialog.case-dialog select").dispatchEvent(new Event("change"))`))
		p.do(chromedp.Evaluate[chromedp.Void](`document.querySelectorAll("dialog.case-dialog select")[1].value = "receive"`))
		inputs := `document.querySelectorAll("dialog.case-dialog input[type=text]")`
		p.do(chromedp.Evaluate[chromedp.Void](inputs + `[0].focus()`))
		p.do(chromedp.KeyEvent("张某盗窃案"), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent("盗窃罪"), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent("张某"))
		p.shot("case-open-dialog")
		p.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the case room", `location.hash.startsWith("#/r/case") && `+entryWith("张某盗窃案")+`?.querySelector(".card")`, 15*time.Second)
		room := strings.TrimPrefix(evalAs[string](p, `decodeURIComponent(location.hash)`), "#/r/")
		p.waitFor("the case panel", `!document.querySelector("#case-panel").hidden && document.querySelector("#case-panel").textContent.includes("立案审查")`, 10*time.Second)

		// Filing needs the leader's approval: asked in the panel, decided by the leader.
		p.click(`#case-panel button[data-approval="file"]`)
		p.waitFor("the approval dialog", `document.querySelector("dialog.case-dialog[open]")`, 5*time.Second)
		p.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the approval request card", entryWith("审批申请")+`?.querySelector(".status")?.textContent.includes("等待审批")`, 10*time.Second)
		l := newBrowser(t, "leader-case", 1366, 768, false)
		l.login(srv, leader)
		l.waitFor("the approval in the to-do queue", `document.querySelector(".todo")?.textContent.includes("待审批")`, 10*time.Second)
		l.click(".todo a")
		l.waitFor("the Approve button", `document.querySelector('#message-log button[data-act="approve"]')`, 10*time.Second)
		l.shot("case-approval-leader")
		l.click(`#message-log button[data-act="approve"]`)
		l.waitFor("the decision dialog", `document.querySelector("dialog.case-dialog[open]")`, 5*time.Second)
		l.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the approval arriving", logText+`.includes("已批准")`, 10*time.Second)
		l.mustBeClean()

		p.waitFor("filing available", `document.querySelector('#case-panel button[data-transition="file"]')`, 10*time.Second)
		p.click(`#case-panel button[data-transition="file"]`)
		p.waitFor("the act dialog", `document.querySelector("dialog.case-dialog[open]")`, 5*time.Second)
		p.click("dialog.case-dialog button[type=submit]")
		p.waitFor("investigation", `document.querySelector("#case-panel").textContent.includes("侦查")`, 10*time.Second)

		transfer := func() {
			t.Helper()
			// The transfer needs the leader's approval too; this one over the API.
			tok := srv.mustLogin(t, police)
			var ar struct {
				Message apiMessage `json:"message"`
			}
			if st := srv.apiCall(t, tok, "POST", "/cases/"+room+"/approvals", map[string]any{"transition": "transfer_for_prosecution", "index": 0}, &ar); st != 201 {
				t.Fatalf("approval request = %d", st)
			}
			if st := srv.apiCall(t, srv.mustLogin(t, leader), "POST", fmt.Sprintf("/cases/%s/approvals/%d/decision", room, ar.Message.Seq), map[string]any{"granted": true}, nil); st != 201 {
				t.Fatalf("approval decision = %d", st)
			}
			p.waitFor("the transfer available", `document.querySelector('#case-panel button[data-transition="transfer_for_prosecution"]')`, 10*time.Second)
			p.click(`#case-panel button[data-transition="transfer_for_prosecution"]`)
			p.waitFor("the transfer dialog with the receiver", `document.querySelector("dialog.case-dialog[open] select")?.value === "150102-procuratorate"`, 10*time.Second)
			p.do(chromedp.SetUploadFiles(chromedp.CSS("dialog.case-dialog .doc-file"), []string{docFile}))
			p.shot("case-transfer-dialog")
			p.click("dialog.case-dialog button[type=submit]")
			p.waitFor("the transfer card", entryWith("侦查终结移送审查起诉")+`?.querySelector(".status.pending")`, 15*time.Second)
		}
		docFile = filepath.Join(t.TempDir(), "起诉意见书.txt")
		os.WriteFile(docFile, []byte("起诉意见书正文"), 0o644)
		transfer()
		if evalAs[bool](p, `!!document.querySelector('#message-log button[data-act="accept"]')`) {
			t.Errorf("the sender sees an Accept button on its own transfer")
		}

		// The prosecutor sees it arrive live, with documents and the buttons.
		q.waitFor("the case in the list", `document.querySelector(`+js(`.room-item[data-room="`+room+`"]`)+`)`, 15*time.Second)
		q.waitFor("the transfer in the to-do queue", `document.querySelector(".todo")?.textContent.includes("待接收")`, 10*time.Second)
		q.openRoom(room)
		card := entryWith("侦查终结移送审查起诉")
		q.waitFor("Accept and Return", card+`?.querySelector('button[data-act="accept"]') && `+card+`.querySelector('button[data-act="return"]')`, 10*time.Second)
		q.waitFor("the documents", card+`.textContent.includes("起诉意见书") && `+card+`.textContent.includes("附文件")`, 5*time.Second)
		q.shot("case-transfer-prosecutor")

		// A return needs a reason: refused without, sent with.
		q.do(chromedp.Evaluate[chromedp.Void](card + `.querySelector('button[data-act="return"]').click()`))
		q.waitFor("the return dialog", `document.querySelector("dialog.case-dialog[open] textarea")`, 5*time.Second)
		q.click("dialog.case-dialog button[type=submit]")
		q.waitFor("the reason demanded", `document.querySelector("dialog.case-dialog .form-error").textContent.includes("理由")`, 5*time.Second)
		q.do(chromedp.SendKeys(chromedp.CSS("#missing-items"), "现场勘验笔录"))
		q.do(chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll("dialog.case-dialog textarea")].find(e => e.id !== "missing-items").focus()`))
		q.do(chromedp.KeyEvent("证据卷缺少现场勘验笔录，请补充后重新移送"))
		q.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the return with its reason", entryWith("证据卷缺少现场勘验笔录")+`?.closest(".entry").querySelector(".card-case-return")`, 15*time.Second)
		p.waitFor("the transfer marked returned", entryWith("侦查终结移送审查起诉")+`?.textContent.includes("对方已退回")`, 10*time.Second)
		p.shot("case-returned-police")

		// Then a transfer that is accepted.
		transfer()
		q.waitFor("the second transfer's Accept", `document.querySelectorAll('#message-log button[data-transition="accept_for_review"]').length === 1`, 15*time.Second)
		q.click(`#message-log button[data-act="accept"][data-transition="accept_for_review"]`)
		q.waitFor("the accept dialog", `document.querySelector("dialog.case-dialog[open]")`, 5*time.Second)
		q.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the acceptance", logText+`.includes("已接收") && `+entryWith("侦查终结移送审查起诉")+`?.textContent.includes("对方已接收")`, 15*time.Second)
		p.waitFor("the new holder", `document.querySelector("#case-panel").textContent.includes("审查起诉") && document.querySelector("#case-panel").textContent.includes("检察院")`, 10*time.Second)
		p.shot("case-accepted-police")
		q.shot("case-accepted-prosecutor")

		// The committee supervisor: sees the case, no Accept/Return, the
		// supervision notice; a forged accept is refused with the rule.
		sv := newBrowser(t, "supervisor-case", 1366, 768, false)
		sv.login(srv, supervisor)
		sv.do(chromedp.Navigate(srv.url + "/#/r/" + room))
		sv.waitFor("the case room", entryWith("侦查终结移送审查起诉"), 15*time.Second)
		if evalAs[bool](sv, `!!document.querySelector('#message-log button[data-act="accept"], #message-log button[data-act="return"]')`) {
			t.Errorf("the supervisor sees Accept or Return")
		}
		sv.waitFor("the supervision action", `document.querySelector("#supervise-btn")`, 10*time.Second)
		sv.shot("case-supervisor")
		done := sv.expect(`status of 40[39]`)
		forged := evalAs[map[string]any](sv, `fetch("/api/v1/cases/`+room+`/transfers/1/accept", {method: "POST", headers: {"Content-Type": "application/json", Authorization: "Bearer " + JSON.parse(sessionStorage.getItem("caseroom.session")).access}, body: JSON.stringify({transition: "accept_for_review"})}).then(async r => ({status: r.status, body: await r.json()}))`)
		done()
		if st, _ := forged["status"].(float64); st != 403 && st != 409 {
			t.Errorf("a forged accept by the supervisor answered %v", forged)
		}
		sv.click("#supervise-btn")
		sv.waitFor("the supervision dialog", `document.querySelector("dialog.case-dialog[open] textarea")`, 5*time.Second)
		sv.do(chromedp.SendKeys(chromedp.CSS("dialog.case-dialog textarea"), "请于三日内审查完毕并报告进展"))
		sv.click("dialog.case-dialog button[type=submit]")
		q.waitFor("the supervision notice", logText+`.includes("请于三日内审查完毕并报告进展")`, 15*time.Second)
		q.shot("case-supervision-prosecutor")

		// A supervisor of the city, not a member: the case is in their
		// jurisdiction list, and reading it is recorded in the room.
		city := newBrowser(t, "city-supervisor", 1366, 768, false)
		city.login(srv, "committee.150100.supervisor1")
		city.waitFor("the jurisdiction list", `document.querySelector(".juris")?.textContent.includes("张某盗窃案")`, 15*time.Second)
		city.click(`.juris a[data-room="` + room + `"]`)
		city.waitFor("the case history", entryWith("侦查终结移送审查起诉"), 15*time.Second)
		if !city.composerHidden() {
			t.Errorf("a non-member supervisor gets a composer")
		}
		city.shot("case-city-supervisor")
		q.waitFor("the recorded look", logText+`.includes("查看了本群记录")`, 15*time.Second)

		for _, b := range []*browserTab{p, q, sv, city} {
			b.mustBeClean()
		}
	})

	t.Run("CaseClocksAndExtension", func(t *testing.T) {
		if noCasework {
			t.Skip("this caseroomd has no casework API yet")
		}
		const leader = "police.150102.leader1"
		tok, ltok := srv.mustLogin(t, police), srv.mustLogin(t, leader)
		type approval struct {
			Seq     int64  `json:"seq"`
			Clock   string `json:"clock"`
			Decided int64  `json:"decided"`
		}
		var c struct {
			ID        string     `json:"id"`
			Approvals []approval `json:"approvals"`
		}
		if st := srv.apiCall(t, tok, "POST", "/cases", map[string]any{"procedure": "criminal", "transition": "receive", "title": "王某抢夺案", "cause": "抢夺",
			"parties": []map[string]string{{"id": "s1", "role": "suspect", "name": "王某"}}}, &c); st != 201 {
			t.Fatalf("open a case = %d", st)
		}
		room := c.ID
		approvedAct := func(in map[string]any) {
			t.Helper()
			var ar struct {
				Message apiMessage `json:"message"`
			}
			req := map[string]any{"transition": in["transition"], "index": 0}
			if s, ok := in["suspect"]; ok {
				req["suspect"] = s
			}
			if st := srv.apiCall(t, tok, "POST", "/cases/"+room+"/approvals", req, &ar); st != 201 {
				t.Fatalf("approval request for %v = %d", in["transition"], st)
			}
			if st := srv.apiCall(t, ltok, "POST", fmt.Sprintf("/cases/%s/approvals/%d/decision", room, ar.Message.Seq), map[string]any{"granted": true}, nil); st != 201 {
				t.Fatalf("approval decision for %v = %d", in["transition"], st)
			}
			if st := srv.apiCall(t, tok, "POST", "/cases/"+room+"/acts", in, nil); st != 201 {
				t.Fatalf("act %v = %d", in["transition"], st)
			}
		}
		approvedAct(map[string]any{"transition": "file", "documents": []map[string]string{{"name": "立案决定书"}}})
		approvedAct(map[string]any{"transition": "detain", "suspect": "s1", "documents": []map[string]string{{"name": "拘留证"}}})

		// The panel lists the clocks the detention started, each counting down.
		p := newBrowser(t, "police-clocks", 1366, 768, false)
		p.login(srv, police)
		p.openRoom(room)
		det := `document.querySelector('#case-panel .clock-item[data-clock="CR-DET-02/s1"]')`
		p.waitFor("the clocks in the panel", `document.querySelector("#case-panel").textContent.includes("办案期限") && `+det, 15*time.Second)
		items := `[...document.querySelectorAll("#case-panel .clock-item")]`
		if n := evalAs[int](p, items+`.length`); n < 4 {
			t.Errorf("%d clocks in the panel, want the detention's four", n)
		}
		if !evalAs[bool](p, items+`.every(e => /剩余|已超期/.test(e.querySelector(".deadline").textContent))`) {
			t.Errorf("a clock without its countdown: %q", evalAs[string](p, `document.querySelector("#case-panel ul.clocks").textContent`))
		}
		if got := evalAs[string](p, det+`.textContent`); !strings.Contains(got, "提请批准逮捕") || !strings.Contains(got, "CPL Art. 91") ||
			!strings.Contains(got, "王某") || !strings.Contains(got, "节假日不顺延") {
			t.Errorf("CR-DET-02 in the panel: %q", got)
		}
		p.axe("case panel with clocks")
		p.shot("case-clocks-panel")

		// The officer asks for the extension (CPL Art. 91: +1–4 d, the police leader).
		p.click(`#case-panel button[data-extension="CR-DET-02/s1"]`)
		p.waitFor("the extension dialog", `document.querySelector("dialog.case-dialog[open] select")`, 5*time.Second)
		p.waitFor("the length field", `[...document.querySelectorAll("dialog.case-dialog .field")].some(f => !f.hidden && f.querySelector("input[type=text]"))`, 5*time.Second)
		p.do(chromedp.SendKeys(chromedp.CSS(`dialog.case-dialog input[type=text]`), "2d"))
		p.shot("case-extension-dialog")
		p.click("dialog.case-dialog button[type=submit]")
		p.waitFor("the extension request card", entryWith("延长期限申请")+`?.querySelector(".status")?.textContent.includes("等待审批")`, 10*time.Second)
		p.waitFor("the pending extension in the panel", det+`.textContent.includes("延长申请待审批")`, 10*time.Second)
		if srv.apiCall(t, tok, "GET", "/cases/"+room, nil, &c) != 200 {
			t.Fatal("get the case")
		}
		i := slices.IndexFunc(c.Approvals, func(a approval) bool { return a.Clock == "CR-DET-02" && a.Decided == 0 })
		if i < 0 {
			t.Fatalf("no pending extension request in %+v", c.Approvals)
		}
		before := evalAs[string](p, det+`.textContent`)
		if st := srv.apiCall(t, ltok, "POST", fmt.Sprintf("/cases/%s/approvals/%d/decision", room, c.Approvals[i].Seq), map[string]any{"granted": true, "note": "同意延长2日"}, nil); st != 201 {
			t.Fatalf("the leader's decision = %d", st)
		}
		p.waitFor("the extended clock", det+`.textContent.includes("已延长 1 次")`, 10*time.Second)
		if after := evalAs[string](p, det+`.textContent`); after == before || evalAs[bool](p, `!!document.querySelector('#case-panel button[data-extension="CR-DET-02/s1"]')`) {
			t.Errorf("CR-DET-02 after the grant: %q (was %q), or still offered for extension", after, before)
		}
		p.shot("case-clocks-extended")
		p.mustBeClean()
	})

	// Last: it restarts the server.
	t.Run("ReconnectAfterRestart", func(t *testing.T) {
		room := srv.mustCreateRoom(t, police, "断线重连测试群", pros)
		p := newBrowser(t, "police-restart", 1366, 768, false)
		q := newBrowser(t, "prosecutor-restart", 390, 844, true)
		p.login(srv, police)
		q.login(srv, pros)
		p.openRoom(room)
		q.openRoom(room)
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "重启前的消息"), enter())
		q.waitFor("the first message", entryWith("重启前的消息"), 10*time.Second)

		offline := []string{`WebSocket connection to .* failed`, `ERR_CONNECTION_REFUSED`, `ERR_CONNECTION_RESET`, `ERR_EMPTY_RESPONSE`, `status of 50[23]`}
		pdone, qdone := p.expect(offline...), q.expect(offline...)
		srv.stop()
		p.waitFor("the disconnected banner", `!document.querySelector("#banner").hidden && document.querySelector("#banner").textContent.includes("连接已断开")`, 15*time.Second)
		q.waitFor("the disconnected banner", `!document.querySelector("#banner").hidden`, 15*time.Second)
		// Typed while offline: kept in the outbox and shown as waiting.
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "断线期间输入的消息"), enter())
		p.waitFor("the waiting message", `document.querySelector("#message-log .pending")?.textContent.includes("断线期间输入的消息")`, 10*time.Second)
		p.shot("reconnect-banner")
		q.shot("reconnect-banner-390x844")

		srv.start()
		// Posted before the browsers are back: they get it by resuming.
		tok := srv.mustLogin(t, pros)
		srv.apiCall(t, tok, "POST", "/rooms/"+room+"/messages", map[string]any{"client_id": "restart-1", "kind": "text", "body": "重启后检察院发的消息"}, nil)
		for _, b := range []*browserTab{p, q} {
			b.waitFor("the banner gone", `document.querySelector("#banner").hidden`, 40*time.Second)
			b.waitFor("the message posted while away", entryWith("重启后检察院发的消息"), 15*time.Second)
			b.waitFor("the offline message sent", entryWith("断线期间输入的消息")+`?.matches("[data-seq]")`, 15*time.Second)
		}
		pdone()
		qdone()
		h := srv.history(t, tok, room)
		n := 0
		var want []int64
		for _, m := range h {
			if m.Body == "断线期间输入的消息" {
				n++
			}
			if m.Kind != "edit" && m.Kind != "retract" {
				want = append(want, m.Seq)
			}
		}
		if n != 1 {
			t.Errorf("the message typed offline is stored %d times, want once", n)
		}
		for _, b := range []*browserTab{p, q} {
			if b.text("#message-log .pending") != "" {
				t.Errorf("%s still shows a pending message", b.name)
			}
			got := evalAs[[]int64](b, `[...document.querySelectorAll("#message-log [data-seq]")].map(e => +e.dataset.seq)`)
			if !slices.Equal(got, want) {
				t.Errorf("%s shows seqs %v after resuming, the server has %v", b.name, got, want)
			}
		}
		p.shot("reconnected")
		p.mustBeClean()
		q.mustBeClean()
	})
}

var (
	// docFile is an attachment carried by the transfer (set by the case test).
	docFile string
	// noCasework is set when the server under test has no casework API yet.
	noCasework bool
)

// hasCasework reports whether the server serves the casework API.
func (s *server) hasCasework(t *testing.T) bool {
	t.Helper()
	return s.apiCall(t, s.mustLogin(t, "police.150102.officer1"), "GET", "/procedures", nil, nil) == 200
}

// click clicks the element sel once it is there, in the page (an element that
// re-renders between chromedp's lookup and its click would be lost).
func (b *browserTab) click(sel string) {
	b.t.Helper()
	b.waitFor(sel, `document.querySelector(`+js(sel)+`)`, 10*time.Second)
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(` + js(sel) + `).click()`))
}

func (b *browserTab) composerHidden() bool {
	b.t.Helper()
	return evalAs[bool](b, `document.querySelector(".composer").hidden`)
}

func (b *browserTab) evalClear(sel string) {
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(` + js(sel) + `).textContent = ""`))
}

// tabUntil presses Tab (or Shift+Tab) until expr holds, at most n times.
func (b *browserTab) tabUntil(expr string, back bool, n int) {
	b.t.Helper()
	for range n {
		if evalAs[bool](b, "!!("+expr+")") {
			return
		}
		if back {
			b.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
		} else {
			b.do(chromedp.KeyEvent(kb.Tab))
		}
	}
	if !evalAs[bool](b, "!!("+expr+")") {
		b.fail("%d Tabs did not reach %s; focus is on %s", n, expr, evalAs[string](b, `document.activeElement.outerHTML.slice(0, 200)`))
	}
}

// axe runs axe-core on the page and fails on serious or critical findings.
func (b *browserTab) axe(screen string) {
	b.t.Helper()
	if !evalAs[bool](b, `typeof axe !== "undefined"`) {
		b.do(chromedp.Evaluate[chromedp.Void](axeSource))
	}
	type node struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	}
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []node `json:"nodes"`
	}
	vs := evalAs[[]violation](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => ({target: n.target, html: n.html}))})))`)
	for _, v := range vs {
		msg := fmt.Sprintf("axe on %s (%s): %s [%s] %s", screen, b.name, v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			msg += fmt.Sprintf("\n\t%v %s", n.Target, n.HTML)
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Error(msg)
		} else {
			b.t.Log(msg)
		}
	}
}

// noHScroll fails when the page or a scrolling pane is wider than its box.
func (b *browserTab) noHScroll(screen string) {
	b.t.Helper()
	bad := evalAs[[]string](b, `(() => {
		const out = [];
		const vw = document.documentElement.clientWidth;
		if (document.documentElement.scrollWidth > vw) out.push("page " + document.documentElement.scrollWidth + " > " + vw);
		if (document.body.scrollWidth > document.body.clientWidth) out.push("body " + document.body.scrollWidth + " > " + document.body.clientWidth);
		for (const el of document.querySelectorAll(".log, .rooms, .sidebar, .room, .case-panel, .top, .composer, .login-page")) {
			if (el.offsetParent === null) continue;
			if (el.scrollWidth > el.clientWidth + 1) out.push((el.id || el.className) + " " + el.scrollWidth + " > " + el.clientWidth);
			const r = el.getBoundingClientRect();
			if (r.right > vw + 1) out.push((el.id || el.className) + " ends at " + r.right + " > " + vw);
		}
		return out;
	})()`)
	for _, s := range bad {
		b.t.Errorf("horizontal overflow on %s: %s", screen, s)
	}
}
