package reconcile

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/amanat/dbops/reconcile/postgres"
	"github.com/amanat/dbops/spec"
)

// ChecksumStatus compares the applied migrations with the files now.
type ChecksumStatus struct {
	Ledger string `json:"ledger"` // the ledger table, beside goose's
	// Verified were recorded when dbops applied them; Adopted when dbops
	// first met them already applied (or by repair): their file then, not
	// necessarily the SQL that ran.
	Verified   int `json:"verified"`
	Adopted    int `json:"adopted"`
	Unrecorded int `json:"unrecorded"`
	// Changed lists applied migrations whose file differs from the
	// recorded checksum: an error until restored or repaired.
	Changed []string `json:"changed,omitempty"`
	// Warning says why the checksums could not be verified.
	Warning string `json:"warning,omitempty"`
}

// planChecksums reads the ledger (read-only; missing means nothing
// recorded) and checks every applied migration's file against it. It
// returns the record change for applied migrations without a checksum, and
// an error naming the edited ones.
func planChecksums(ctx context.Context, st *spec.Stack, db *sql.DB, live postgres.Live) (*ChecksumStatus, []Change, error) {
	m := st.Spec.Postgres.Migrations
	available, err := spec.MigrationVersions(m.Path)
	if err != nil {
		return nil, nil, permanent(fmt.Errorf("spec.postgres.migrations.dir: %w", err))
	}
	ledger := live.Ledger // read with goose's rows, when it could be
	switch {
	case live.LedgerErr != nil:
		err = live.LedgerErr
	case ledger == nil:
		ledger, err = postgres.ReadLedgerOf(ctx, db, m.Table, live.LedgerExists)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" { // e.g. read-only CI credentials
		return &ChecksumStatus{Ledger: postgres.LedgerTable(m.Table), Warning: fmt.Sprintf(
			"checksums of applied migrations not verified: no SELECT privilege on %s (GRANT SELECT ON %s TO the plan's role)",
			postgres.LedgerTable(m.Table), postgres.LedgerTable(m.Table))}, nil, nil
	}
	if err != nil {
		url := st.Spec.Postgres.URL
		return nil, nil, serverError("postgres", postgres.Server(url), err, spec.Password(url))
	}
	cs := &ChecksumStatus{Ledger: postgres.LedgerTable(m.Table)}
	var unrecorded []string
	for _, v := range live.Applied {
		file := available[v]
		rec, ok := ledger[v]
		if !ok {
			cs.Unrecorded++
			unrecorded = append(unrecorded, file)
			continue
		}
		sum, err := postgres.FileSum(m, file)
		if err != nil {
			return cs, nil, err
		}
		switch {
		case sum != rec.SHA256:
			cs.Changed = append(cs.Changed, fmt.Sprintf("%s (sha256 %.12s… recorded %s on %s, file now %.12s…)",
				file, rec.SHA256, sourceWord(rec.Source), rec.RecordedAt.UTC().Format("2006-01-02"), sum))
		case rec.Source == postgres.SourceApplied:
			cs.Verified++
		default:
			cs.Adopted++
		}
	}
	if len(cs.Changed) > 0 {
		return cs, nil, permanent(fmt.Errorf("spec.postgres.migrations.dir: %d applied migration(s) changed since they were applied: %s. "+
			"An applied migration must not be edited: restore it from git (and put the change in a new migration), or, "+
			"if the edit is deliberate and harmless, run `dbops migrations repair %s` to record the files as they are now",
			len(cs.Changed), strings.Join(cs.Changed, "; "), st.Metadata.Name))
	}
	if cs.Unrecorded == 0 {
		return cs, nil, nil
	}
	return cs, []Change{{Stack: st.Metadata.Name, Kind: ResourceChecksums, Resource: string(ResourceChecksums), Name: cs.Ledger,
		Action: ActionRecord, Before: fmt.Sprintf("%d applied migration(s) without checksum (%s)", cs.Unrecorded, span(unrecorded)),
		After: "recorded at adoption"}}, nil
}

func sourceWord(s string) string {
	switch s {
	case postgres.SourceApplied:
		return "when applied"
	case postgres.SourceRepair:
		return "by repair"
	}
	return "at adoption"
}

// span names a list of files briefly: "a.sql" or "a.sql … c.sql".
func span(files []string) string {
	if len(files) == 1 {
		return files[0]
	}
	return files[0] + " … " + files[len(files)-1]
}

// recordChecksums backfills the ledger (first contact: applied versions
// without a row get their file's checksum "at adoption"). Run before
// migrations so that the adoption covers only what ran before dbops.
func recordChecksums(ctx context.Context, db *sql.DB, m *spec.Migrations) error {
	live, err := postgres.Observe(ctx, db, m.Table)
	if err != nil {
		return err
	}
	available, err := spec.MigrationVersions(m.Path)
	if err != nil {
		return err
	}
	versions := map[int64]string{}
	for _, v := range live.Applied {
		if f, ok := available[v]; ok {
			versions[v] = f
		}
	}
	_, err = postgres.Record(ctx, db, m, versions, postgres.SourceAdoption, false, nil)
	return err
}

// Repaired is one ledger row re-recorded by Repair.
type Repaired struct {
	Version int64  `json:"version"`
	File    string `json:"file"`
	Before  string `json:"before"` // the recorded sha256, "" when none
	After   string `json:"after"`
}

// Repair re-records the checksums of every applied migration of st's
// database as its file is now: the explicit way to accept an edit of an
// applied migration. It returns the rows that changed.
func Repair(ctx context.Context, st *spec.Stack, o Options) ([]Repaired, error) {
	pg := st.Spec.Postgres
	if pg == nil || pg.Migrations == nil {
		return nil, fmt.Errorf("stack %s has no postgres migrations", st.Metadata.Name)
	}
	m := pg.Migrations
	if !postgres.KeepsLedger(m) {
		return nil, fmt.Errorf("stack %s: %s migrations keep their own hashes, dbops keeps no checksum ledger for them; to accept an edit of an applied migration, update its hash in %s.%s (plan says how)",
			st.Metadata.Name, m.Format, m.Schema, m.Table)
	}
	server := postgres.Server(pg.URL)
	db, err := postgres.Open(pg.URL, o.timeout(), false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	fail := func(err error) ([]Repaired, error) {
		return nil, serverError("postgres", server, err, spec.Password(pg.URL))
	}
	live, err := postgres.Observe(ctx, db, m.Table)
	if err != nil {
		return fail(err)
	}
	available, err := spec.MigrationVersions(m.Path)
	if err != nil {
		return nil, fmt.Errorf("spec.postgres.migrations.dir: %w", err)
	}
	before, err := postgres.ReadLedger(ctx, db, m.Table)
	if err != nil {
		return fail(err)
	}
	versions := map[int64]string{}
	var missing []string
	for _, v := range live.Applied {
		f, ok := available[v]
		if !ok {
			missing = append(missing, fmt.Sprint(v))
			continue
		}
		if sum, err := postgres.FileSum(m, f); err != nil {
			return nil, err
		} else if rec, ok := before[v]; !ok || rec.SHA256 != sum {
			versions[v] = f
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("spec.postgres.migrations.dir: version %s applied in %s but not in %s: repair records files, restore them first",
			strings.Join(missing, ", "), server, m.Dir)
	}
	rows, err := postgres.Record(ctx, db, m, versions, postgres.SourceRepair, true, nil)
	if err != nil {
		return fail(err)
	}
	out := make([]Repaired, len(rows))
	for i, r := range rows {
		out[i] = Repaired{Version: r.Version, File: r.File, Before: before[r.Version].SHA256, After: r.SHA256}
	}
	slices.SortFunc(out, func(a, b Repaired) int { return cmp.Compare(a.Version, b.Version) })
	return out, nil
}
