-- The casework store: the projection of every case (rebuildable from the case
-- rooms' logs at any time), case-number serials, and the intervention register.
-- Times are Unix microseconds; NULL is the zero time.

-- One row per case: the columns lists filter and sort by, and the whole
-- projection as JSON (parties in it are personal data).
CREATE TABLE casework_cases (
	id          text    NOT NULL PRIMARY KEY,
	room        text    NOT NULL,
	procedure   text    NOT NULL,
	stage       text    NOT NULL,
	holder      text    NOT NULL,
	pending_to  text,
	region      text    NOT NULL,
	committee   text    NOT NULL,
	closed      boolean NOT NULL DEFAULT false,
	next_due    bigint,
	head        bigint  NOT NULL,
	updated_at  bigint  NOT NULL,
	data        jsonb   NOT NULL
);

CREATE INDEX casework_cases_region ON casework_cases (region, updated_at);
CREATE INDEX casework_cases_holder ON casework_cases (holder, updated_at);
CREATE INDEX casework_cases_due ON casework_cases (next_due) WHERE next_due IS NOT NULL AND NOT closed;

-- The participating units of each case (lists "my unit's cases", to-do queues).
CREATE TABLE casework_case_units (
	case_id text NOT NULL REFERENCES casework_cases (id),
	unit    text NOT NULL,
	PRIMARY KEY (unit, case_id)
);

-- The named handling officers (承办人) of each case ("my cases").
CREATE TABLE casework_case_handlers (
	case_id text NOT NULL REFERENCES casework_cases (id),
	user_id text NOT NULL,
	PRIMARY KEY (user_id, case_id)
);

-- Every agency's case number of each case, searchable.
CREATE TABLE casework_case_numbers (
	number  text NOT NULL,
	case_id text NOT NULL REFERENCES casework_cases (id),
	PRIMARY KEY (number, case_id)
);

-- The last serial each unit gave for a year and a code (类型代字).
CREATE TABLE casework_serials (
	unit text    NOT NULL,
	year integer NOT NULL,
	code text    NOT NULL,
	last integer NOT NULL,
	PRIMARY KEY (unit, year, code)
);

-- The intervention register: one hash chain, append-only. Appends lock the
-- single head row, so concurrent appends queue and the chain never forks.
CREATE TABLE casework_intervention_head (
	id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  bigint  NOT NULL,
	hash bytea
);
INSERT INTO casework_intervention_head (id, seq, hash) VALUES (1, 0, NULL);

CREATE TABLE casework_interventions (
	seq        bigint NOT NULL PRIMARY KEY,
	case_id    text   NOT NULL,
	source_seq bigint,               -- the room message of an automatic entry
	data       text   NOT NULL,      -- the entry as JSON, exactly as hashed
	prev       bytea,
	hash       bytea  NOT NULL
);

CREATE INDEX casework_interventions_case ON casework_interventions (case_id, seq);
-- A room message is entered at most once.
CREATE UNIQUE INDEX casework_interventions_source ON casework_interventions (case_id, source_seq) WHERE source_seq IS NOT NULL;

-- The register is never changed: no update, no delete.
CREATE FUNCTION casework_interventions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the intervention register is append-only';
END $$;
CREATE TRIGGER casework_interventions_no_change BEFORE UPDATE OR DELETE ON casework_interventions
	FOR EACH ROW EXECUTE FUNCTION casework_interventions_append_only();
