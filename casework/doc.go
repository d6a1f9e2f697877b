// Package casework turns chat rooms into cases: a case's procedure, stage, holder,
// deadline clocks and evidence checklist are derived from the structured messages
// (acts) of its room.
//
// This part of the package is the pure domain layer, with no storage and no
// transport:
//
//   - Procedures as data (configs/procedures/*.json): stages, transitions, who may
//     perform each, the approvals and hand-over documents it needs, the clocks it
//     starts and stops. See Procedure and LoadProcedures.
//   - Statutory deadlines as data (configs/clocks.json): one ClockRow per row of the
//     deadline tables of domain/procedure.md, each with its clocks. See ClockSpec and
//     LoadClocks.
//   - The holiday calendar (configs/holidays.csv) and the clock arithmetic of
//     CPL Art. 105 / CivPL Art. 85 / SPC-CI Art. 202. See Calendar and Clock.
//   - Evidence checklists (configs/evidence/*.json). See Checklist and
//     LoadChecklists.
//
// Nothing here reads the wall clock or holds package state: callers pass the
// times (an act's occurred_at, "now") and the loaded data.
package casework
