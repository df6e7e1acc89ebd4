package gormfield

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/mediaclean/mediaclean/filefield"
)

// ErrNoScope is the error of a statement on a tracked model that runs
// inside a transaction the plugin does not own and no filefield.Scope
// covers (db.Begin() or db.Transaction without Transaction from this
// package): the plugin cannot know when, or whether, that transaction
// commits, so it refuses the statement rather than guess. Run it with
// this package's Transaction, or with a context carrying a scope, or set
// Options.LeaveUnscoped. It is filefield.ErrNoScope, so errors.Is
// matches either name.
var ErrNoScope = filefield.ErrNoScope

// Options configure a Plugin. The zero value refuses unscoped
// transactions and logs nothing.
type Options struct {
	// LeaveUnscoped lets statements inside a transaction that no scope
	// covers run, and leaves their files alone: the stale ones stay for
	// the orphan finder, and a new file's change stays with its field
	// (see filefield.Field.Claim). Each such statement is logged at Warn.
	LeaveUnscoped bool
	// Logger receives the plugin's warnings (a stale path that is not
	// safe to delete, an unscoped statement left alone). Nil is silent;
	// the fields log their own events.
	Logger *slog.Logger
}

// Plugin is a gorm.Plugin that keeps tracked file columns in step with
// their files. Declare the columns with Track, then install it with
// db.Use. It is safe for concurrent use once installed.
type Plugin struct {
	opts Options

	mu      sync.Mutex
	pending []tracked         // declared before Initialize
	byTable map[string]*model // by table name
	db      *gorm.DB
}

// tracked is one Track call.
type tracked struct {
	model  any
	column string
	field  *filefield.Field
}

// model is what the plugin knows of one tracked table.
type model struct {
	table   string
	pks     []string // primary key column names
	columns []column
}

// column is one tracked column of a table.
type column struct {
	name  string // database column name
	field *filefield.Field
}

// New returns a plugin with opts.
func New(opts Options) *Plugin {
	return &Plugin{opts: opts, byTable: map[string]*model{}}
}

// Name implements gorm.Plugin.
func (p *Plugin) Name() string { return "mediaclean:gormfield" }

// Track declares that the column (a struct field name such as
// "Picture", or its database name) of model's table holds stored paths
// of field. Declare every file column once, before or after db.Use; it
// returns p so that calls chain. It panics if the model cannot be
// parsed, has no primary key, or has no such column: those are
// programming errors, found at start-up.
func (p *Plugin) Track(model any, column string, field *filefield.Field) *Plugin {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := tracked{model: model, column: column, field: field}
	if p.db == nil {
		p.pending = append(p.pending, t)
		return p
	}
	if err := p.add(t); err != nil {
		panic(err)
	}
	return p
}

// Initialize implements gorm.Plugin: it registers the callbacks and
// resolves the columns declared so far.
func (p *Plugin) Initialize(db *gorm.DB) error {
	p.mu.Lock()
	p.db = db
	pending := p.pending
	p.pending = nil
	for _, t := range pending {
		if err := p.add(t); err != nil {
			p.mu.Unlock()
			return err
		}
	}
	p.mu.Unlock()
	return p.register(db)
}

// add resolves t against db's naming strategy; p.mu is held.
func (p *Plugin) add(t tracked) error {
	s, err := schema.Parse(t.model, &sync.Map{}, p.db.NamingStrategy)
	if err != nil {
		return fmt.Errorf("gormfield: parse %T: %w", t.model, err)
	}
	if len(s.PrimaryFieldDBNames) == 0 {
		return fmt.Errorf("gormfield: %T has no primary key: the plugin finds rows again by it", t.model)
	}
	f := s.LookUpField(t.column)
	if f == nil || f.DBName == "" {
		return fmt.Errorf("gormfield: %T has no column %q", t.model, t.column)
	}
	if f.FieldType.Kind() != reflect.String && !(f.FieldType.Kind() == reflect.Pointer && f.FieldType.Elem().Kind() == reflect.String) {
		return fmt.Errorf("gormfield: %T.%s is %s, not a string", t.model, f.Name, f.FieldType)
	}
	m := p.byTable[s.Table]
	if m == nil {
		m = &model{table: s.Table, pks: s.PrimaryFieldDBNames}
		p.byTable[s.Table] = m
	}
	for _, c := range m.columns {
		if c.name == f.DBName {
			return fmt.Errorf("gormfield: %s.%s is tracked twice", s.Table, f.DBName)
		}
	}
	m.columns = append(m.columns, column{name: f.DBName, field: t.field})
	return nil
}

// modelOf returns the tracked table a statement writes, or nil.
func (p *Plugin) modelOf(db *gorm.DB) *model {
	table := db.Statement.Table
	if table == "" && db.Statement.Schema != nil {
		table = db.Statement.Schema.Table
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byTable[table]
}
