package casework

import (
	"slices"

	"caseroom/acl"
)

// The ACL actions of casework. Every path into a case (HTTP, WebSocket, bots)
// ends in a Service method that asks the Guard about one of them. The act
// actions are one per act kind of a procedure's transitions (ActKinds), so that
// configs/policy.json can speak of "accepting a transfer" without naming
// procedures; which agency and role may perform which transition is the
// procedure's data (Transition.By), checked by the service after the Guard.
const (
	OpenCase Action = "case.open"

	ActReceive  Action = "case.receive"
	ActFile     Action = "case.file"
	ActDecline  Action = "case.decline"
	ActRequest  Action = "case.request"
	ActDecide   Action = "case.decide"
	ActApprove  Action = "case.approve"
	ActDeny     Action = "case.deny"
	ActExecute  Action = "case.execute"
	ActTransfer Action = "case.transfer"
	ActAccept   Action = "case.accept"
	ActReturn   Action = "case.return"
	ActConvert  Action = "case.convert"
	ActRecord   Action = "case.record"
	ActNotify   Action = "case.notify"
	ActClose    Action = "case.close"
	ActReopen   Action = "case.reopen"

	// RequestApproval asks for an approval a transition needs.
	RequestApproval Action = "case.approval.request"
	// SignApproval is an internal approval: a leader of the asking unit signs off.
	SignApproval Action = "case.approval.sign"
	// DecideApproval is an approval the law gives to another organ (a higher
	// procuratorate, the provincial prison administration…).
	DecideApproval Action = "case.approval.decide"
	// Challenge sends a check message of procedure.md §4.4 (复议, 复核, 抗诉, 纠正违法通知书…).
	Challenge Action = "case.challenge"
	// Correct posts a correction of an earlier act; acts are never edited.
	Correct Action = "case.correct"
	// Supervise issues a supervision notice (督办): the committee's formal instrument.
	Supervise Action = "case.supervise"
	// AssignHandlers names or reassigns a unit's handling officers (承办人).
	AssignHandlers Action = "case.handlers.assign"
	// DelegateLeader names an acting leader of a unit on a case for a period.
	DelegateLeader Action = "case.leader.delegate"
	// RecordIntervention enters an intervention that happened outside the system.
	RecordIntervention Action = "case.intervention.record"
	// ReadInterventions reads a case's entries of the intervention register.
	ReadInterventions Action = "case.intervention.read"
	// ListJurisdiction lists every case of the subject's jurisdiction.
	ListJurisdiction Action = "case.list.jurisdiction"
	// PostTimedAct posts what the passing of time performs (a judgment becoming
	// effective when the appeal period passes unused): the deadline bot's only
	// act, and no agency's decision, so neither a judicial nor a room action.
	PostTimedAct Action = "case.timed"
)

// Action is acl.Action; the alias keeps casework's constants short.
type Action = acl.Action

// actActions maps an act kind of a transition to its ACL action.
var actActions = map[string]Action{
	"receive": ActReceive, "file": ActFile, "decline": ActDecline, "request": ActRequest,
	"decide": ActDecide, "approve": ActApprove, "deny": ActDeny, "execute": ActExecute,
	"transfer": ActTransfer, "accept": ActAccept, "return": ActReturn, "convert": ActConvert,
	"record": ActRecord, "notify": ActNotify, "close": ActClose, "reopen": ActReopen,
}

// ActAction returns the ACL action of an act kind (one of ActKinds).
func ActAction(act string) Action { return actActions[act] }

// Actions lists every action casework registers, in a stable order.
func Actions() []Action {
	out := []Action{OpenCase}
	for _, k := range ActKinds {
		out = append(out, actActions[k])
	}
	return append(out, RequestApproval, SignApproval, DecideApproval, Challenge, Correct,
		Supervise, AssignHandlers, DelegateLeader, RecordIntervention, ReadInterventions, ListJurisdiction, PostTimedAct)
}

// init declares casework's actions to acl before any policy is loaded, and puts
// them in the invariant classes of DESIGN.md "Mutual checks":
//
//   - JudicialActions (invariant 4, the committee never performs one): opening a
//     case, every procedural act, approvals, challenges and corrections of acts.
//     The committee's own instrument, Supervise, is not one.
//   - DecisionActions (invariant 2, no unit decides its own request): approving
//     or denying a request, deciding on one, accepting or returning a transfer,
//     and deciding another unit's approval request. The service sets
//     Resource.RequestUnit to the asking unit whenever the act answers one.
//   - InternalApprovals (invariant 2, a leader who is not the asker): SignApproval.
//   - room actions (invariant 1, members only): everything done in the case room.
//     Supervise, ReadInterventions and ListJurisdiction are not: supervisors and
//     auditors whose jurisdiction covers a case need not be its members.
func init() {
	all := Actions()
	for _, a := range all {
		if slices.Contains(acl.Actions, a) {
			return // registered already (a test binary that links casework twice cannot, but be safe)
		}
	}
	acl.RegisterActions(all...)
	judicial := []Action{OpenCase, RequestApproval, SignApproval, DecideApproval, Challenge, Correct}
	for _, k := range ActKinds {
		judicial = append(judicial, actActions[k])
	}
	acl.JudicialActions = append(acl.JudicialActions, judicial...)
	acl.DecisionActions = append(acl.DecisionActions, ActApprove, ActDeny, ActDecide, ActAccept, ActReturn, DecideApproval)
	acl.InternalApprovals = append(acl.InternalApprovals, SignApproval)
	room := []Action{RequestApproval, SignApproval, DecideApproval, Challenge, Correct, AssignHandlers, DelegateLeader, RecordIntervention}
	for _, k := range ActKinds {
		room = append(room, actActions[k])
	}
	acl.RegisterRoomActions(room...)
}
