// Package schemas holds the JSON Schemas of the stack spec and the JSON plan.
package schemas

import _ "embed"

// Stack is the JSON Schema of one Stack document.
//
//go:embed stack.schema.json
var Stack []byte

// Plan is the JSON Schema of `dbops plan --format json`.
//
//go:embed plan.schema.json
var Plan []byte

// Drift is the JSON Schema of `dbops drift --format json`.
//
//go:embed drift.schema.json
var Drift []byte

// Notification is the JSON Schema of one Notification document.
//
//go:embed notification.schema.json
var Notification []byte

// Inspect is the JSON Schema of `dbops inspect --format json`.
//
//go:embed inspect.schema.json
var Inspect []byte

// Apply, Validate, BackupRun, BackupList and Restore are the JSON Schemas of
// the --format json output of those commands.
var (
	//go:embed apply.schema.json
	Apply []byte
	//go:embed validate.schema.json
	Validate []byte
	//go:embed backup-run.schema.json
	BackupRun []byte
	//go:embed backup-list.schema.json
	BackupList []byte
	//go:embed restore.schema.json
	Restore []byte
)

// Version is the JSON Schema of `dbops version --format json`.
//
//go:embed version.schema.json
var Version []byte

// Drill is the JSON Schema of `dbops backup drill --format json`.
//
//go:embed drill.schema.json
var Drill []byte
