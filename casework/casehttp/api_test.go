package casehttp_test

import (
	"slices"
	"testing"

	"caseroom/acl"
	"caseroom/casework/casehttp"
	"caseroom/chat/chatclient"
)

// TestAPIErrorsAndViews checks the API's answers one by one: strict decoding,
// invalid input named by field, hidden cases as 404, denials as 403 with the
// rule, refusals as 409 with the rule; the procedures marked for the caller,
// the transitions available now, mentions in the to-do queue.
func TestAPIErrorsAndViews(t *testing.T) {
	s := mustServer(t, "sqlite")
	police := s.login("police.150102.officer1")
	policeL := s.login("police.150102.leader1")
	outsider := s.login("police.150203.officer1")
	sup := s.login("committee.150102.supervisor1")

	for _, tt := range []struct {
		name  string
		body  any
		code  string
		field string
	}{
		{"unknown field", map[string]any{"procedure": "criminal", "title": "x", "colour": "red"}, "unknown_field", "colour"},
		{"wrong type", map[string]any{"procedure": "criminal", "title": 7}, "invalid_json_type", "title"},
		{"unknown procedure", map[string]any{"procedure": "martial", "title": "x"}, "invalid", "procedure"},
		{"no title", map[string]any{"procedure": "criminal", "title": " "}, "invalid", "title"},
		{"bad party", map[string]any{"procedure": "criminal", "title": "x", "parties": []map[string]string{{"id": "a", "role": "king", "name": "x"}}}, "invalid", "parties[0].role"},
		{"future", map[string]any{"procedure": "criminal", "title": "x", "occurred_at": "2999-01-01T00:00:00Z"}, "invalid", "occurred_at"},
	} {
		r := police.call("POST", "/api/v1/cases", tt.body)
		if r.status != 400 || r.err().Code != tt.code || r.err().Field != tt.field {
			t.Errorf("POST /cases (%s) = %d %s, want 400 %s on %s", tt.name, r.status, r.body, tt.code, tt.field)
		}
	}
	var c caseView
	police.must(201, "POST", "/api/v1/cases", map[string]any{"procedure": "criminal", "title": "张三盗窃案",
		"parties": []map[string]string{{"id": "s1", "role": "suspect", "name": "张三", "id_number": "150102199001011234"}}}).into(t, &c)
	path := "/api/v1/cases/" + string(c.ID)

	// What the caller can do now: filing and declining need the leader's sign-off first.
	i := slices.IndexFunc(c.Available, func(a casehttp.AvailableView) bool { return a.Transition == "file" })
	if i < 0 || c.Available[i].Ready || c.Available[i].Needs == "" {
		t.Errorf("available transitions %+v: want file, not ready, saying what it needs", c.Available)
	}
	if c.Parties[0].IDNumber == "" {
		t.Errorf("a member does not see the parties' ID numbers")
	}

	if r := outsider.call("GET", path, nil); r.status != 404 || r.err().Code != "not_found" {
		t.Errorf("GET a hidden case = %d %s, want 404 not_found", r.status, r.body)
	}
	if r := outsider.call("POST", path+"/acts", map[string]any{"transition": "file"}); r.status != 404 {
		t.Errorf("POST an act on a hidden case = %d, want 404", r.status)
	}
	if r := police.call("GET", "/api/v1/cases/case_nonexistent", nil); r.status != 404 {
		t.Errorf("GET a missing case = %d, want 404", r.status)
	}
	police.refused(409, "approval-required", "POST", path+"/acts", map[string]any{"transition": "file", "documents": []map[string]string{{"name": "立案决定书"}}})
	police.refused(409, "stage", "POST", path+"/acts", map[string]any{"transition": "transfer_for_prosecution", "target": "150102-procuratorate"})
	police.refused(403, "case-own-unit", "POST", path+"/acts", map[string]any{"transition": "indict", "target": "150102-court"})
	sup.refused(403, "committee-no-judicial", "POST", path+"/approvals", map[string]any{"transition": "file"})
	if r := police.call("POST", path+"/acts", map[string]any{"transition": "fly"}); r.status != 400 || r.err().Field != "transition" {
		t.Errorf("an unknown transition = %d %s", r.status, r.body)
	}
	if r := police.call("POST", path+"/transfers/99/accept", map[string]any{}); r.status != 409 || r.err().Rule != "no-pending-transfer" {
		t.Errorf("accepting no transfer = %d %s", r.status, r.body)
	}
	if r := police.call("POST", path+"/approvals/abc/decision", map[string]any{"granted": true}); r.status != 400 {
		t.Errorf("a bad seq = %d", r.status)
	}
	if r := policeL.call("POST", path+"/approvals/3/decision", map[string]any{}); r.status != 400 {
		t.Errorf("a decision without granted = %d %s", r.status, r.body)
	}

	// Procedures, with the transitions the caller's agency and role perform.
	var procs struct{ Procedures []casehttp.ProcedureView }
	police.must(200, "GET", "/api/v1/procedures", nil).into(t, &procs)
	var crim *casehttp.ProcedureView
	for i := range procs.Procedures {
		if procs.Procedures[i].ID == "criminal" {
			crim = &procs.Procedures[i]
		}
	}
	if crim == nil || crim.Suspect == nil {
		t.Fatalf("procedures %+v lack the criminal one with its suspect machine", procs.Procedures)
	}
	mine := map[string]bool{}
	for _, tr := range append(crim.Transitions, crim.Suspect.Transitions...) {
		mine[tr.ID] = tr.Mine
	}
	if !mine["file"] || !mine["detain"] || mine["approve_arrest"] || mine["judge_first_instance"] {
		t.Errorf("a police officer's transitions: file %v detain %v approve_arrest %v judge %v", mine["file"], mine["detain"], mine["approve_arrest"], mine["judge_first_instance"])
	}

	// A mention is in the mentioned user's to-do until read.
	if _, _, err := police.c.Post(t.Context(), c.Room, chatclient.PostRequest{Body: "请审批立案", Mentions: []acl.UserID{"police.150102.leader1"}}); err != nil {
		t.Fatal(err)
	}
	var todo struct{ Todo []casehttp.TodoView }
	policeL.must(200, "GET", "/api/v1/todo", nil).into(t, &todo)
	if !slices.ContainsFunc(todo.Todo, func(v casehttp.TodoView) bool { return v.Kind == "mention" && v.Message != nil && v.Case == c.ID }) {
		t.Errorf("the leader's to-do lacks the mention: %+v", todo.Todo)
	}

	// Recording an intervention over HTTP: a handler may, with what §10 asks.
	r := police.call("POST", path+"/interventions", map[string]any{"regulation": "2", "intervenor_name": "某局长",
		"intervenor_unit": "某单位", "channel": "phone", "occurred_at": "2026-01-05T10:00:00Z", "summary": "询问案件进展"})
	if r.status != 201 {
		t.Errorf("POST interventions = %d %s", r.status, r.body)
	}
	if r := police.call("POST", path+"/interventions", map[string]any{"regulation": "9", "intervenor_name": "x", "channel": "phone",
		"occurred_at": "2026-01-05T10:00:00Z", "summary": "x"}); r.status != 400 || r.err().Field != "regulation" {
		t.Errorf("POST an intervention with a bad regulation = %d %s", r.status, r.body)
	}
	var reg struct{ Interventions []casehttp.InterventionView }
	policeL.must(200, "GET", path+"/interventions", nil).into(t, &reg)
	if len(reg.Interventions) != 1 || reg.Interventions[0].Regulation != "2" || len(reg.Interventions[0].Hash) != 32 {
		t.Errorf("register %+v", reg.Interventions)
	}
	if r := police.call("GET", path+"/interventions", nil); r.status != 403 || r.err().Rule != "case-intervention-read-leader" {
		t.Errorf("an officer reading the register = %d %s", r.status, r.body)
	}

	// Corrections reference the act; the act stays.
	var res casehttp.ActResult
	police.must(201, "POST", path+"/corrections", map[string]any{"target": c.Acts[0].Seq, "reason": "补充嫌疑人",
		"party": map[string]string{"id": "s2", "role": "suspect", "name": "王五"}}).into(t, &res)
	if len(res.Case.Suspects) != 2 {
		t.Errorf("suspects after the correction: %+v", res.Case.Suspects)
	}
	if r := sup.call("POST", path+"/corrections", map[string]any{"target": c.Acts[0].Seq, "reason": "x", "party": map[string]string{"id": "s3", "role": "suspect", "name": "x"}}); r.status != 403 {
		t.Errorf("a correction by the committee = %d %s", r.status, r.body)
	}
}
