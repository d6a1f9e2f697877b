package chathttp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"caseroom/chat"
)

func TestPostHistoryAndIdempotentRetry(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor)
	first := e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"client_id": "c-1", "body": "请查收<案卷>"})
	want(t, "first post", first, 201, "")
	again := e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"client_id": "c-1", "body": "请查收<案卷>"})
	want(t, "retried post", again, 200, "")
	var a, b chat.MessageView
	first.decode(t, &a)
	again.decode(t, &b)
	if a.Seq != b.Seq || a.Hash != b.Hash {
		t.Errorf("retry answered seq %d hash %s, want the first result seq %d hash %s", b.Seq, b.Hash, a.Seq, a.Hash)
	}
	hist := e.history(room, prosecutor, "?after=1")
	if len(hist) != 1 || hist[0].Body != "请查收<案卷>" || hist[0].Sender != police || hist[0].SenderUnit != "150102-police" {
		t.Errorf("prosecutor's history after 1 = %+v, want exactly the one message", hist)
	}
	// Pages: before and limit.
	for i := range 5 {
		e.mustPost(room, prosecutor, fmt.Sprintf("回复 %d", i))
	}
	page := e.history(room, police, "?before=7&limit=2")
	if len(page) != 2 || page[0].Seq != 5 || page[1].Seq != 6 {
		t.Errorf("history before=7 limit=2 = seqs %v, want [5 6]", seqs(page))
	}
	want(t, "history with limit 0", e.do("GET", "/api/v1/rooms/"+room+"/messages?limit=0", police, nil), 400, "invalid")
	want(t, "history with after=-1", e.do("GET", "/api/v1/rooms/"+room+"/messages?after=-1", police, nil), 400, "invalid")
	want(t, "history with since=yesterday", e.do("GET", "/api/v1/rooms/"+room+"/messages?since=yesterday", police, nil), 400, "invalid")
}

func seqs(ms []chat.MessageView) []chat.Seq {
	out := make([]chat.Seq, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

// TestNonMemberFindsNothing: a room a user may not see does not exist for them,
// whatever they try; nothing is stored and every refusal is audited.
func TestNonMemberFindsNothing(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor)
	m := e.mustPost(room, police, "内部消息")
	ref := e.upload(room, police, "a.txt", []byte("案卷材料"))
	calls := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/rooms/" + room, nil},
		{"GET", "/api/v1/rooms/" + room + "/messages", nil},
		{"POST", "/api/v1/rooms/" + room + "/messages", map[string]any{"body": "我也来说两句"}},
		{"GET", "/api/v1/rooms/" + room + "/members", nil},
		{"POST", "/api/v1/rooms/" + room + "/members", map[string]any{"users": []string{judge}}},
		{"PATCH", fmt.Sprintf("/api/v1/rooms/%s/messages/%d", room, m.Seq), map[string]any{"body": "改"}},
		{"DELETE", fmt.Sprintf("/api/v1/rooms/%s/messages/%d", room, m.Seq), nil},
		{"GET", fmt.Sprintf("/api/v1/rooms/%s/messages/%d/receipts", room, m.Seq), nil},
		{"POST", "/api/v1/rooms/" + room + "/read", map[string]any{"seq": 2}},
		{"GET", "/api/v1/rooms/" + room + "/files/" + ref.SHA256, nil},
		{"POST", "/api/v1/rooms/" + room + "/files?name=x.txt", []byte("x")},
		{"GET", "/api/v1/rooms/" + room + "/verify", nil},
	}
	for _, user := range []string{judge, farSuper, sysadmin} {
		for _, c := range calls {
			denials := e.denials()
			e.unchanged(room, func() {
				want(t, user+" "+c.method+" "+c.path, e.do(c.method, c.path, user, c.body), 404, "not_found")
			})
			if c.method != "POST" || !strings.HasSuffix(c.path, "/read") { // the read marker checks membership without the guard
				if e.denials() <= denials {
					t.Errorf("%s %s %s: no denial audited", user, c.method, c.path)
				}
			}
		}
	}
	// An unknown room answers the same.
	want(t, "unknown room", e.do("GET", "/api/v1/rooms/r_nosuchroom/messages", police, nil), 404, "not_found")
}

// TestSupervisorAndAuditorLook: a supervisor or auditor whose jurisdiction covers
// the room reads it without being a member, the look is entered in the room once
// a day, and they still cannot post.
func TestSupervisorAndAuditorLook(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor)
	e.mustPost(room, police, "案情通报")
	for _, who := range []string{supervisor, auditor} {
		if got := e.history(room, who, ""); len(got) < 2 {
			t.Errorf("%s read %d entries, want the room's log", who, len(got))
		}
		e.history(room, who, "") // a second look the same day adds nothing
		e.unchanged(room, func() {
			r := e.do("POST", "/api/v1/rooms/"+room+"/messages", who, map[string]any{"body": "指示"})
			want(t, who+" posting without membership", r, 403, "forbidden")
			if r.rule() != "members-only" {
				t.Errorf("%s posting: rule %q, want members-only", who, r.rule())
			}
		})
	}
	looks := 0
	for _, m := range e.history(room, police, "") {
		if m.Kind == chat.RoomLook {
			looks++
		}
	}
	if looks != 2 {
		t.Errorf("room.look entries = %d, want 2 (one per reader per day)", looks)
	}
	e.advance(24 * time.Hour)
	e.history(room, supervisor, "")
	if n := countKind(e.history(room, police, ""), chat.RoomLook); n != 3 {
		t.Errorf("room.look entries the next day = %d, want 3", n)
	}
}

func countKind(ms []chat.MessageView, k chat.Kind) int {
	n := 0
	for _, m := range ms {
		if m.Kind == k {
			n++
		}
	}
	return n
}

func TestBadInputStoresNothing(t *testing.T) {
	e := mustEnv(t, chat.Options{MaxText: 1024})
	room := e.mustRoom(police, prosecutor)
	path := "/api/v1/rooms/" + room + "/messages"
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"malformed JSON", `{"body": "半截`, 400, "malformed_json"},
		{"two values", `{"body":"a"}{"body":"b"}`, 400, "malformed_json"},
		{"unknown field", `{"body":"a","colour":"red"}`, 400, "unknown_field"},
		{"wrong type", `{"body":42}`, 400, "invalid_json_type"},
		{"text too long", map[string]any{"body": strings.Repeat("案", 400)}, 400, "invalid"},
		{"empty text", map[string]any{"body": "   "}, 400, "invalid"},
		{"unknown kind", map[string]any{"kind": "telegram", "body": "x"}, 400, "invalid"},
		{"act kind posted directly", map[string]any{"kind": "room.rename", "payload": map[string]any{"name": "x"}}, 400, "invalid"},
		{"file payload failing its schema", map[string]any{"kind": "file", "payload": map[string]any{"sha256": "abc", "name": "a"}}, 400, "invalid"},
		{"file payload with unknown field", map[string]any{"kind": "file", "payload": map[string]any{"sha256": strings.Repeat("a", 64), "name": "a", "evil": 1}}, 400, "invalid"},
		{"file never uploaded here", map[string]any{"kind": "file", "payload": map[string]any{"sha256": strings.Repeat("a", 64), "name": "a", "size": 1, "type": "text/plain"}}, 400, "invalid"},
		{"reply to the future", map[string]any{"body": "x", "reply_to": 99}, 400, "invalid"},
		{"client id too long", map[string]any{"body": "x", "client_id": strings.Repeat("k", 65)}, 400, "invalid"},
		{"oversized body", map[string]any{"body": strings.Repeat("x", 600<<10)}, 413, "body_too_large"},
	}
	for _, tt := range tests {
		e.unchanged(room, func() { want(t, tt.name, e.do("POST", path, police, tt.body), tt.status, tt.code) })
	}
	// Form bodies are not JSON.
	e.unchanged(room, func() {
		r := e.doRaw("POST", path, police, "application/x-www-form-urlencoded", "body=x")
		want(t, "form body", r, 415, "unsupported_media_type")
	})
}

func (e *env) doRaw(method, path, user, contentType, body string) reply {
	e.t.Helper()
	return e.doWith(method, path, user, contentType, []byte(body))
}

func TestEditRetractAndVersions(t *testing.T) {
	e := mustEnv(t, chat.Options{RetractWindow: time.Hour})
	room := e.mustRoom(police, prosecutor)
	m := e.mustPost(room, police, "初稿")
	msgPath := fmt.Sprintf("/api/v1/rooms/%s/messages/%d", room, m.Seq)
	e.unchanged(room, func() {
		r := e.do("PATCH", msgPath, prosecutor, map[string]any{"body": "别人改的"})
		want(t, "editing someone else's message", r, 403, "forbidden")
		if r.rule() != "message-edit-author" {
			t.Errorf("rule %q, want message-edit-author", r.rule())
		}
	})
	want(t, "editing one's own", e.do("PATCH", msgPath, police, map[string]any{"body": "二稿"}), 201, "")
	want(t, "editing again", e.do("PATCH", msgPath, police, map[string]any{"body": "三稿"}), 201, "")
	hist := e.history(room, prosecutor, "")
	orig := find(hist, m.Seq)
	if orig.Edited == 0 {
		t.Errorf("the edited message has no edited mark: %+v", orig)
	}
	if last := hist[len(hist)-1]; last.Kind != chat.Edit || last.Body != "三稿" || last.Target != m.Seq {
		t.Errorf("latest entry = %+v, want the edit to 三稿 of seq %d", last, m.Seq)
	}
	// Every version is kept, for auditors; members may not list them.
	want(t, "versions as a member", e.do("GET", msgPath+"/versions", prosecutor, nil), 403, "forbidden")
	var v struct {
		Original chat.MessageView
		Edits    []chat.MessageView
	}
	r := e.do("GET", msgPath+"/versions", auditor, nil)
	want(t, "versions as the auditor", r, 200, "")
	r.decode(t, &v)
	if v.Original.Body != "初稿" || len(v.Edits) != 2 || v.Edits[0].Body != "二稿" || v.Edits[1].Body != "三稿" {
		t.Errorf("versions = %+v, want 初稿, 二稿, 三稿", v)
	}

	// Retraction: hidden from members, kept for auditors; past the window only a
	// moderator may retract.
	secret := e.mustPost(room, police, "发错了")
	secretPath := fmt.Sprintf("/api/v1/rooms/%s/messages/%d", room, secret.Seq)
	want(t, "retracting someone else's message", e.do("DELETE", secretPath, prosecutor, nil), 403, "forbidden")
	want(t, "retracting one's own", e.do("DELETE", secretPath, police, nil), 201, "")
	if got := find(e.history(room, prosecutor, ""), secret.Seq); got.Body != "" || got.Retracted == 0 {
		t.Errorf("member sees the retracted message as %+v, want no body and a retracted mark", got)
	}
	if got := find(e.history(room, auditor, ""), secret.Seq); got.Body != "发错了" {
		t.Errorf("auditor sees the retracted message as %+v, want its body", got)
	}
	late := e.mustPost(room, prosecutor, "一小时后才撤回")
	e.advance(2 * time.Hour)
	latePath := fmt.Sprintf("/api/v1/rooms/%s/messages/%d", room, late.Seq)
	e.unchanged(room, func() {
		r := e.do("DELETE", latePath, prosecutor, nil)
		if r.status != 403 || r.rule() != "retract-window" {
			t.Errorf("retracting after the window = %d %s, want 403 retract-window", r.status, r.body)
		}
	})
	want(t, "the owner retracts it as moderator", e.do("DELETE", latePath, police, nil), 201, "")
	want(t, "editing a retracted message", e.do("PATCH", secretPath, police, map[string]any{"body": "x"}), 400, "invalid")
	want(t, "editing a membership entry", e.do("PATCH", fmt.Sprintf("/api/v1/rooms/%s/messages/1", room), police, map[string]any{"body": "x"}), 400, "invalid")
	want(t, "editing seq 999", e.do("PATCH", fmt.Sprintf("/api/v1/rooms/%s/messages/999", room), police, map[string]any{"body": "x"}), 404, "not_found")
}

func find(ms []chat.MessageView, seq chat.Seq) chat.MessageView {
	for _, m := range ms {
		if m.Seq == seq {
			return m
		}
	}
	return chat.MessageView{}
}

func TestMembersRolesAndMentionAll(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor)
	want(t, "a member adding someone", e.do("POST", "/api/v1/rooms/"+room+"/members", prosecutor, map[string]any{"users": []string{judge}}), 403, "forbidden")
	want(t, "the owner adds an observer", e.do("POST", "/api/v1/rooms/"+room+"/members", police, map[string]any{"users": []string{judge}, "role": "observer"}), 201, "")
	e.unchanged(room, func() {
		r := e.do("POST", "/api/v1/rooms/"+room+"/messages", judge, map[string]any{"body": "旁听者发言"})
		if r.status != 403 || r.rule() != "observer-read-only" {
			t.Errorf("observer posting = %d %s, want 403 observer-read-only", r.status, r.body)
		}
	})
	if got := e.history(room, judge, ""); len(got) == 0 {
		t.Error("the observer cannot read the room")
	}
	e.unchanged(room, func() {
		r := e.do("POST", "/api/v1/rooms/"+room+"/messages", prosecutor, map[string]any{"body": "@所有人 开会", "mentions": []string{"all"}})
		if r.status != 403 || r.rule() != "mention-all-owner" {
			t.Errorf("@所有人 by a member = %d %s, want 403 mention-all-owner", r.status, r.body)
		}
	})
	want(t, "@所有人 by the owner", e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"body": "@所有人 开会", "mentions": []string{"all"}}), 201, "")
	want(t, "adding an unknown user", e.do("POST", "/api/v1/rooms/"+room+"/members", police, map[string]any{"users": []string{"nobody"}}), 400, "invalid")
	want(t, "a member leaves", e.do("DELETE", "/api/v1/rooms/"+room+"/members/"+prosecutor, prosecutor, nil), 200, "")
	want(t, "the one who left reads", e.do("GET", "/api/v1/rooms/"+room+"/messages", prosecutor, nil), 404, "not_found")
	want(t, "removing the owner", e.do("DELETE", "/api/v1/rooms/"+room+"/members/"+police, police, nil), 400, "invalid")
	// A unit's leader adds that unit's users to a room the unit takes part in.
	room2 := e.mustRoom(prosecutor, policeLead)
	want(t, "police leader adds a police officer", e.do("POST", "/api/v1/rooms/"+room2+"/members", policeLead, map[string]any{"users": []string{police2}}), 201, "")
	want(t, "police leader adds a judge", e.do("POST", "/api/v1/rooms/"+room2+"/members", policeLead, map[string]any{"users": []string{judge}}), 403, "forbidden")
}

func TestReadMarkersReceiptsAndMyRooms(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor, judge)
	m := e.mustPost(room, police, "请回执")
	var rooms struct {
		Rooms []struct {
			ID     string
			Unread int
			Last   *chat.MessageView
		}
	}
	e.do("GET", "/api/v1/rooms", prosecutor, nil).decode(t, &rooms)
	found := false
	for _, r := range rooms.Rooms {
		if r.ID == room {
			found = true
			if r.Unread != 1 || r.Last == nil || r.Last.Body != "请回执" {
				t.Errorf("my rooms line = %+v, want 1 unread and the last message", r)
			}
		}
	}
	if !found {
		t.Fatalf("my rooms of the prosecutor lack %s", room)
	}
	want(t, "mark read", e.do("POST", "/api/v1/rooms/"+room+"/read", prosecutor, map[string]any{"seq": m.Seq}), 200, "")
	var rc struct {
		Unread   int
		Receipts []struct {
			User string
			Read bool
		}
	}
	e.do("GET", fmt.Sprintf("/api/v1/rooms/%s/messages/%d/receipts", room, m.Seq), police, nil).decode(t, &rc)
	if rc.Unread != 1 || len(rc.Receipts) != 2 {
		t.Fatalf("receipts = %+v, want the prosecutor read and the judge not (1 unread)", rc)
	}
	for _, r := range rc.Receipts {
		if (r.User == prosecutor) != r.Read {
			t.Errorf("receipt %+v: only the prosecutor has read it", r)
		}
	}
	e.do("GET", "/api/v1/rooms", prosecutor, nil).decode(t, &rooms)
	for _, r := range rooms.Rooms {
		if r.ID == room && r.Unread != 0 {
			t.Errorf("unread after marking read = %d, want 0", r.Unread)
		}
	}
}

type fileRef struct {
	SHA256 string
	Name   string
	Size   int64
	Type   string
}

func (e *env) doWith(method, path, user, contentType string, body []byte) reply {
	e.t.Helper()
	r := e.doBytes(method, path, user, contentType, body)
	return r
}

func (e *env) upload(room, user, name string, content []byte) fileRef {
	e.t.Helper()
	r := e.doBytes("POST", "/api/v1/rooms/"+room+"/files?name="+name, user, "text/plain; charset=utf-8", content)
	if r.status != 201 {
		e.t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var f fileRef
	r.decode(e.t, &f)
	return f
}

func TestAttachments(t *testing.T) {
	e := mustEnv(t, chat.Options{MaxUpload: 1024})
	room := e.mustRoom(police, prosecutor)
	content := []byte("起诉意见书（样本）")
	f := e.upload(room, police, "qsyjs.txt", content)
	sum := sha256.Sum256(content)
	if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(content)) || f.Type != "text/plain" {
		t.Errorf("upload answered %+v, want sha256 %x size %d type text/plain", f, sum, len(content))
	}
	want(t, "post the file", e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"kind": "file", "payload": f}), 201, "")
	r := e.do("GET", "/api/v1/rooms/"+room+"/files/"+f.SHA256, prosecutor, nil)
	if r.status != 200 || string(r.body) != string(content) {
		t.Errorf("member download = %d %q, want the content", r.status, r.body)
	}
	// The same content uploaded to another room is that room's; this room's
	// members cannot fetch another room's file by its hash.
	other := e.mustRoom(judge)
	o := e.upload(other, judge, "secret.txt", []byte("别的房间的文件"))
	want(t, "fetching another room's file through this room", e.do("GET", "/api/v1/rooms/"+room+"/files/"+o.SHA256, police, nil), 404, "not_found")
	e.unchanged(room, func() {
		want(t, "posting another room's file", e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"kind": "file", "payload": o}), 400, "invalid")
	})
	want(t, "too large", e.doBytes("POST", "/api/v1/rooms/"+room+"/files?name=big.bin", police, "application/octet-stream", make([]byte, 2048)), 413, "file_too_large")
	want(t, "no name", e.doBytes("POST", "/api/v1/rooms/"+room+"/files", police, "text/plain", []byte("x")), 400, "invalid")
	want(t, "observer-less judge uploads to a room not theirs", e.doBytes("POST", "/api/v1/rooms/"+room+"/files?name=a", judge, "text/plain", []byte("x")), 404, "not_found")
}

func TestRateLimitAnswers429(t *testing.T) {
	e := mustEnv(t, chat.Options{PostRate: 1, PostBurst: 3})
	room := e.mustRoom(police, prosecutor)
	codes := []int{}
	for i := range 5 {
		r := e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"body": fmt.Sprint("消息", i)})
		codes = append(codes, r.status)
		if r.status == 429 && r.code() != "rate_limited" {
			t.Errorf("429 with code %q, want rate_limited", r.code())
		}
	}
	if fmt.Sprint(codes) != "[201 201 201 429 429]" {
		t.Errorf("statuses = %v, want three posts then 429s (burst 3)", codes)
	}
	e.advance(time.Second)
	want(t, "after a second", e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"body": "又可以了"}), 201, "")
}

func TestRenameArchiveAndVerify(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor)
	want(t, "member renames", e.do("PATCH", "/api/v1/rooms/"+room, prosecutor, map[string]any{"name": "新名字"}), 403, "forbidden")
	want(t, "owner renames", e.do("PATCH", "/api/v1/rooms/"+room, police, map[string]any{"name": "新名字"}), 200, "")
	want(t, "both name and archived", e.do("PATCH", "/api/v1/rooms/"+room, police, map[string]any{"name": "x", "archived": true}), 400, "invalid")
	want(t, "owner archives", e.do("PATCH", "/api/v1/rooms/"+room, police, map[string]any{"archived": true}), 200, "")
	e.unchanged(room, func() {
		want(t, "posting in an archived room", e.do("POST", "/api/v1/rooms/"+room+"/messages", police, map[string]any{"body": "x"}), 409, "room_archived")
	})
	var v struct{ Intact bool }
	e.do("GET", "/api/v1/rooms/"+room+"/verify", prosecutor, nil).decode(t, &v)
	if !v.Intact {
		t.Error("an untouched room does not verify")
	}
}

// TestUnitsAsParticipants: the owner makes a unit a participant; its leader
// joins and adds the unit's users, but not another unit's.
func TestUnitsAsParticipants(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(prosecutor)
	want(t, "a non-moderator adds a unit", e.do("POST", "/api/v1/rooms/"+room+"/units", police, map[string]any{"units": []string{"150102-police"}}), 404, "not_found")
	want(t, "an unknown unit", e.do("POST", "/api/v1/rooms/"+room+"/units", prosecutor, map[string]any{"units": []string{"150102-navy"}}), 400, "invalid")
	want(t, "the owner adds the police unit", e.do("POST", "/api/v1/rooms/"+room+"/units", prosecutor, map[string]any{"units": []string{"150102-police"}}), 201, "")
	var us struct{ Units []string }
	e.do("GET", "/api/v1/rooms/"+room+"/units", prosecutor, nil).decode(t, &us)
	if fmt.Sprint(us.Units) != "[150102-police]" {
		t.Errorf("units = %v, want [150102-police]", us.Units)
	}
	want(t, "adding it again", e.do("POST", "/api/v1/rooms/"+room+"/units", prosecutor, map[string]any{"units": []string{"150102-police"}}), 200, "")
	want(t, "the police leader adds a police officer", e.do("POST", "/api/v1/rooms/"+room+"/members", policeLead, map[string]any{"users": []string{police}}), 201, "")
	want(t, "the police leader adds a judge", e.do("POST", "/api/v1/rooms/"+room+"/members", policeLead, map[string]any{"users": []string{judge}}), 403, "forbidden")
	if got := e.history(room, police, ""); len(got) == 0 {
		t.Error("the added officer cannot read the room")
	}
}

// TestPostAfterMembershipChange: a member's post is decided on the room and
// membership remembered from their last post, and the store checks at commit
// that the membership still holds. A member made an observer, or removed,
// since their last post is refused as if nothing had been remembered, and
// nothing is stored.
func TestPostAfterMembershipChange(t *testing.T) {
	e := mustEnv(t, chat.Options{})
	room := e.mustRoom(police, prosecutor, judge)
	want(t, "the prosecutor posts", e.do("POST", "/api/v1/rooms/"+room+"/messages", prosecutor, map[string]any{"body": "第一次"}), 201, "")
	want(t, "the judge posts", e.do("POST", "/api/v1/rooms/"+room+"/messages", judge, map[string]any{"body": "第一次"}), 201, "")

	// The judge becomes an observer by an entry written past this service, as
	// another node (or casework) would write it.
	ms, err := e.chat.Members(context.Background(), chat.RoomID(room))
	if err != nil {
		t.Fatal(err)
	}
	var ref chat.MemberRef
	var owner chat.Membership
	for _, m := range ms {
		if m.Role == chat.Owner {
			owner = m
		} else if !strings.HasPrefix(string(m.Unit), "150102-court") {
			continue
		} else {
			ref = chat.MemberRef{User: m.User, Unit: m.Unit, Role: chat.Observer}
		}
	}
	payload, _ := json.Marshal(chat.MembersChanged{Members: []chat.MemberRef{ref}})
	role := chat.Message{Room: chat.RoomID(room), Kind: chat.MemberRole, Sender: owner.User, SenderUnit: owner.Unit, Payload: payload}
	if _, err := e.chat.Append(context.Background(), &role, 0); err != nil {
		t.Fatal(err)
	}
	e.unchanged(room, func() {
		r := e.do("POST", "/api/v1/rooms/"+room+"/messages", judge, map[string]any{"body": "成为旁听者之后"})
		if r.status != 403 || r.rule() != "observer-read-only" {
			t.Errorf("the judge posting as an observer = %d %s, want 403 observer-read-only", r.status, r.body)
		}
	})

	want(t, "the owner removes the prosecutor", e.do("DELETE", "/api/v1/rooms/"+room+"/members/"+prosecutor, police, nil), 200, "")
	e.unchanged(room, func() {
		want(t, "the removed prosecutor posts", e.do("POST", "/api/v1/rooms/"+room+"/messages", prosecutor, map[string]any{"body": "移出之后"}), 404, "not_found")
	})
	want(t, "the owner adds the prosecutor back", e.do("POST", "/api/v1/rooms/"+room+"/members", police, map[string]any{"users": []string{prosecutor}}), 201, "")
	want(t, "the prosecutor posts again", e.do("POST", "/api/v1/rooms/"+room+"/messages", prosecutor, map[string]any{"body": "回来了"}), 201, "")
}
