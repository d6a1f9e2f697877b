-- The casework store: the projection of every case (rebuildable from the case
-- rooms' logs at any time), case-number serials, and the intervention register.
-- Times are Unix microseconds; NULL is the zero time.

-- One row per case: the columns lists filter and sort by, and the whole
-- projection as JSON (parties in it are personal data).
CREATE TABLE casework_cases (
	id          TEXT    NOT NULL PRIMARY KEY,
	room        TEXT    NOT NULL,
	procedure   TEXT    NOT NULL,
	stage       TEXT    NOT NULL,
	holder      TEXT    NOT NULL,
	pending_to  TEXT,
	region      TEXT    NOT NULL,
	committee   TEXT    NOT NULL,
	closed      INTEGER NOT NULL DEFAULT 0,
	next_due    INTEGER,
	head        INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	data        TEXT    NOT NULL
) STRICT;

CREATE INDEX casework_cases_region ON casework_cases (region, updated_at);
CREATE INDEX casework_cases_holder ON casework_cases (holder, updated_at);
CREATE INDEX casework_cases_due ON casework_cases (next_due) WHERE next_due IS NOT NULL AND closed = 0;

-- The participating units of each case (lists "my unit's cases", to-do queues).
CREATE TABLE casework_case_units (
	case_id TEXT NOT NULL REFERENCES casework_cases (id),
	unit    TEXT NOT NULL,
	PRIMARY KEY (unit, case_id)
) STRICT;

-- The named handling officers (承办人) of each case ("my cases").
CREATE TABLE casework_case_handlers (
	case_id TEXT NOT NULL REFERENCES casework_cases (id),
	user_id TEXT NOT NULL,
	PRIMARY KEY (user_id, case_id)
) STRICT;

-- Every agency's case number of each case, searchable.
CREATE TABLE casework_case_numbers (
	number  TEXT NOT NULL,
	case_id TEXT NOT NULL REFERENCES casework_cases (id),
	PRIMARY KEY (number, case_id)
) STRICT;

-- The last serial each unit gave for a year and a code (类型代字).
CREATE TABLE casework_serials (
	unit TEXT    NOT NULL,
	year INTEGER NOT NULL,
	code TEXT    NOT NULL,
	last INTEGER NOT NULL,
	PRIMARY KEY (unit, year, code)
) STRICT;

-- The intervention register: one hash chain, append-only. data is the entry as
-- JSON; seq, prev and hash chain it (casework.Intervention.Canonical).
CREATE TABLE casework_interventions (
	seq        INTEGER NOT NULL PRIMARY KEY,
	case_id    TEXT    NOT NULL,
	source_seq INTEGER,                -- the room message of an automatic entry
	data       TEXT    NOT NULL,
	prev       BLOB,
	hash       BLOB    NOT NULL
) STRICT;

CREATE INDEX casework_interventions_case ON casework_interventions (case_id, seq);
-- A room message is entered at most once.
CREATE UNIQUE INDEX casework_interventions_source ON casework_interventions (case_id, source_seq) WHERE source_seq IS NOT NULL;

-- The register is never changed: no update, no delete.
CREATE TRIGGER casework_interventions_no_update BEFORE UPDATE ON casework_interventions
BEGIN SELECT RAISE(ABORT, 'the intervention register is append-only'); END;
CREATE TRIGGER casework_interventions_no_delete BEFORE DELETE ON casework_interventions
BEGIN SELECT RAISE(ABORT, 'the intervention register is append-only'); END;
