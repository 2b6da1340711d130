package risk

// Risk judged against the live database.
//
// A statement that destroys data (DROP TABLE, DROP COLUMN, ALTER COLUMN
// TYPE, TRUNCATE) is risky only when the data exists: the table is in the
// live database and holds rows. The analysis of one plan's pending
// migrations, in order, follows what each one creates, renames and drops, so
// that a table or column created by an earlier pending migration counts as
// new, and a live table renamed by one still counts as the live table under
// its new name. Callers answer the live questions through a Catalog.

// TableState is what the live database holds under a table's name.
type TableState int

// Table states. TableHasRows also stands for "unknown": anything the
// catalog cannot prove empty is treated as holding data.
const (
	TableAbsent TableState = iota
	TableEmpty
	TableHasRows
)

// Catalog answers read-only questions about the live database. Names are
// as written in the SQL (unqualified names resolve through the search_path).
type Catalog interface {
	// Table says whether t exists and whether it holds rows.
	Table(t Table) TableState
	// Column says whether live table t has column col.
	Column(t Table, col string) bool
	// Schema says whether schema name exists.
	Schema(name string) bool
	// Size is the total size of live table t in bytes; false when unknown.
	Size(t Table) (int64, bool)
}

// Sequence analyses the pending migrations of one plan, in the order they
// will run: each call to Migration sees what the earlier ones created.
type Sequence struct {
	cat       Catalog
	threshold int64
	names     *names
}

// NewSequence starts the analysis of a plan against cat; threshold is the
// table size over which a blocking CREATE INDEX is risky.
func NewSequence(cat Catalog, threshold int64) *Sequence {
	return &Sequence{cat: cat, threshold: threshold, names: newNames()}
}

// origin says where a name, as left by the pending migrations analysed so
// far, gets its contents from.
type origin struct {
	kind originKind
	live Table  // originLive: the live table under its live name
	col  string // for columns: the live column's name
}

type originKind int

const (
	originLive    originKind = iota // the live object of that name (not touched yet)
	originCreated                   // created by a pending migration: holds no prior data
	originGone                      // dropped or renamed away by a pending migration
)

type colKey struct {
	table Table // the live table (normalised)
	col   string
}

// names tracks tables and columns created, renamed and dropped by the
// pending migrations analysed so far.
type names struct {
	tables  map[Table]origin
	columns map[colKey]origin
	schemas map[string]originKind
}

func newNames() *names {
	return &names{tables: map[Table]origin{}, columns: map[colKey]origin{}, schemas: map[string]originKind{}}
}

func (n *names) schema(name string) originKind       { return n.schemas[name] }
func (n *names) setSchema(name string, k originKind) { n.schemas[name] = k }

// norm maps an unqualified name to schema public, as the analysis of one
// migration always did.
func norm(t Table) Table {
	if t.Schema == "" {
		t.Schema = "public"
	}
	return t
}

// table resolves a table name as the pending migrations left it.
func (n *names) table(t Table) origin {
	if o, ok := n.tables[norm(t)]; ok {
		return o
	}
	return origin{kind: originLive, live: t}
}

func (n *names) setTable(t Table, o origin) { n.tables[norm(t)] = o }

// column resolves column col of live table t.
func (n *names) column(t Table, col string) origin {
	if o, ok := n.columns[colKey{norm(t), col}]; ok {
		return o
	}
	return origin{kind: originLive, live: t, col: col}
}

func (n *names) setColumn(t Table, col string, o origin) { n.columns[colKey{norm(t), col}] = o }

// legacy is the Catalog of Migration(sql, sizes, threshold): every table not
// created in the migration exists and holds rows, as before live lookups.
type legacy struct {
	sizes func(schema, table string) (int64, bool)
}

func (legacy) Table(Table) TableState    { return TableHasRows }
func (legacy) Column(Table, string) bool { return true }
func (legacy) Schema(string) bool        { return true }
func (l legacy) Size(t Table) (int64, bool) {
	if l.sizes == nil {
		return 0, false
	}
	return l.sizes(t.Schema, t.Name)
}
