package entfield

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	"entgo.io/ent/schema/field"

	"github.com/mediaclean/mediaclean/filefield"
)

// ErrNoScope is the error of a mutation of a tracked field inside an ent
// transaction that no filefield.Scope covers (client.Tx without WithTx
// from this package): the hook cannot know when, or whether, that
// transaction commits, so it refuses the mutation rather than guess. Run
// it with WithTx, or with a context carrying a scope, or set
// Options.LeaveUnscoped. It is filefield.ErrNoScope, so errors.Is
// matches either name.
var ErrNoScope = filefield.ErrNoScope

// Options configure a Tracker. The zero value refuses unscoped
// transactions and logs nothing.
type Options struct {
	// LeaveUnscoped lets mutations inside a transaction that no scope
	// covers run, and leaves their files alone: the stale ones stay for
	// the orphan finder, and a new file's change stays with its field
	// (see filefield.Field.Claim). Each such mutation is logged at Warn.
	LeaveUnscoped bool
	// Logger receives the tracker's warnings (a stale path that is not
	// safe to delete, an unscoped mutation left alone). Nil is silent;
	// the fields log their own events.
	Logger *slog.Logger
}

// Tracker keeps tracked ent fields in step with their files. Declare
// each file column with Track and install the hook it returns on the
// client of the column's type. It is safe for concurrent use.
type Tracker struct {
	opts    Options
	drv     dialect.Driver
	dialect string

	mu      sync.Mutex
	columns []*column
	typeOf  map[string]string // table name → the ent type whose mutations reached it
}

// column is one tracked column.
type column struct {
	table  string // table name
	schema string // the table's schema, "" for the default
	pk     string // primary key column
	name   string // the column, which is also the ent field's name
	field  *filefield.Field
}

// New returns a tracker for the ent client built on drv (the driver given
// to the generated NewClient, e.g. entsql.OpenDB(dialect.Postgres, db)).
// drv is used after commits, outside any transaction, to ask whether a
// stale path is still held by a committed row before its file goes.
func New(drv dialect.Driver, opts Options) *Tracker {
	if drv == nil {
		panic("entfield: New needs the client's driver")
	}
	return &Tracker{opts: opts, drv: drv, dialect: drv.Dialect(), typeOf: map[string]string{}}
}

// Track declares that column of table (the generated migrate.<T>Table
// and <t>.Field<Name> constants) holds stored paths of f, and returns
// the hook that keeps them in step, to install on the client of that
// type:
//
//	client.User.Use(files.Track(pics, migrate.UsersTable, user.FieldPicture))
//
// It panics if the column is not a string column of table, if table has
// no single-column primary key, or if the column is tracked already:
// those are programming errors, found at start-up. The hook refuses, with
// an error, every mutation of a type that has no such field, so a hook
// installed on the wrong client fails at its first use.
//
// The generated code must have the sql/execquery feature (ent generate
// --feature sql/execquery): the hook reads the rows a bulk update or a
// delete touches through the mutation's QueryContext, in its
// transaction.
func (t *Tracker) Track(f *filefield.Field, table *schema.Table, column string) ent.Hook {
	c, err := t.add(f, table, column)
	if err != nil {
		panic(err)
	}
	return func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			return t.mutate(ctx, c, m, next)
		})
	}
}

// add validates and records a tracked column.
func (t *Tracker) add(f *filefield.Field, table *schema.Table, name string) (*column, error) {
	if f == nil || table == nil {
		return nil, errors.New("entfield: Track needs a field and a table")
	}
	if len(table.PrimaryKey) != 1 {
		return nil, fmt.Errorf("entfield: table %s has no single-column primary key: the hook finds rows by it", table.Name)
	}
	var col *schema.Column
	for _, c := range table.Columns {
		if c.Name == name {
			col = c
		}
	}
	if col == nil {
		return nil, fmt.Errorf("entfield: table %s has no column %q", table.Name, name)
	}
	if col.Type != field.TypeString {
		return nil, fmt.Errorf("entfield: %s.%s is %s, not a string", table.Name, name, col.Type)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.columns {
		if c.table == table.Name && c.schema == table.Schema && c.name == name {
			return nil, fmt.Errorf("entfield: %s.%s is tracked twice", table.Name, name)
		}
	}
	c := &column{table: table.Name, schema: table.Schema, pk: table.PrimaryKey[0].Name, name: name, field: f}
	t.columns = append(t.columns, c)
	return c, nil
}

// check refuses a mutation that the hook of c must not see: one of a
// type without c's field, or of another type than the one first seen on
// c's table (the hook was installed on a client whose type happens to
// have a field of the same name, or on every type with client.Use).
func (t *Tracker) check(c *column, m ent.Mutation) error {
	typ := m.Type()
	key := c.schema + "." + c.table
	t.mu.Lock()
	seen := t.typeOf[key]
	t.mu.Unlock()
	if seen == typ {
		return nil
	}
	if seen != "" {
		return fmt.Errorf("entfield: the hook of %s.%s ran on a %s mutation, and on %s ones before: install it on the client of one type only", c.table, c.name, typ, seen)
	}
	if !hasField(m, c.name) {
		return fmt.Errorf("entfield: %s has no field %s: install the hook of %s.%s on the client of the type it belongs to", typ, c.name, c.table, c.name)
	}
	if err := capable(m); err != nil {
		return err
	}
	t.mu.Lock()
	if t.typeOf[key] == "" {
		t.typeOf[key] = typ
	}
	seen = t.typeOf[key]
	t.mu.Unlock()
	if seen != typ {
		return fmt.Errorf("entfield: the hook of %s.%s ran on a %s mutation, and on %s ones before: install it on the client of one type only", c.table, c.name, typ, seen)
	}
	return nil
}

// hasField reports whether m's type has the field name, without
// changing m: a field the mutation sets, clears or adds to is defined;
// resetting one it leaves alone does nothing, and fails for an unknown
// name.
func hasField(m ent.Mutation, name string) bool {
	if _, ok := m.Field(name); ok || m.FieldCleared(name) {
		return true
	}
	if _, ok := m.AddedField(name); ok {
		return true
	}
	return m.ResetField(name) == nil
}

// referenced reports whether any tracked column holds path in a committed
// row. Every deletion the hooks register asks it at Commit, after the
// transaction committed, so a path that a row still holds (another row,
// or the same one after a change the hook could not see) keeps its file.
func (t *Tracker) referenced(ctx context.Context, path string) (bool, error) {
	t.mu.Lock()
	cols := append([]*column(nil), t.columns...)
	t.mu.Unlock()
	for _, c := range cols {
		b := entsql.Dialect(t.dialect)
		q, args := b.Select(c.name).From(b.Table(c.table).Schema(c.schema)).
			Where(entsql.EQ(c.name, path)).Limit(1).Query()
		var rows entsql.Rows
		if err := t.drv.Query(ctx, q, args, &rows); err != nil {
			return false, err
		}
		found := rows.Next()
		err := errors.Join(rows.Err(), rows.Close())
		if err != nil {
			return false, err
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// warn logs a warning if the tracker has a logger.
func (t *Tracker) warn(ctx context.Context, msg string, args ...any) {
	if t.opts.Logger != nil {
		t.opts.Logger.WarnContext(ctx, "entfield: "+msg, args...)
	}
}
