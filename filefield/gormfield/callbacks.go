package gormfield

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/mediaclean/mediaclean/filefield"
)

// stateKey is the gorm instance key of a statement's stmtState.
const stateKey = "mediaclean:gormfield"

// stmtState is what the plugin carries from before a statement to after
// it and to the end of its transaction.
type stmtState struct {
	m *model
	// ctx registers changes: in the caller's scope, or in own.
	ctx context.Context
	// own is the statement's own scope when the statement commits on its
	// own (a transaction gorm began for it, or none), nil otherwise. It
	// ends with the statement.
	own *filefield.Scope
	// autocommit: no transaction at all, so the write commits by itself
	// as it runs, before gorm's after-hooks.
	autocommit bool
	// early holds changes of the caller's scope whose new path this
	// statement wrote: they commit when the statement commits, since the
	// row is then committed whatever the caller's scope does.
	early []*filefield.Change
	// before holds the tracked rows as they were, by primary key.
	before map[string]row
	keys   [][]any
}

// register installs the callbacks on db.
func (p *Plugin) register(db *gorm.DB) error {
	cb := db.Callback()
	update := cb.Update().Get("gorm:update")
	del := cb.Delete().Get("gorm:delete")
	if update == nil || del == nil {
		return errors.New("gormfield: gorm:update or gorm:delete is not registered")
	}
	// The after callbacks run before gorm saves the associations and
	// before the model's own after-hooks: a write without a transaction
	// has committed by then, whatever they do.
	return errors.Join(
		cb.Create().After("gorm:begin_transaction").Before("gorm:before_create").Register("mediaclean:scope_create", p.ownScope),
		cb.Update().After("gorm:begin_transaction").Before("gorm:before_update").Register("mediaclean:scope_update", p.ownScope),
		cb.Delete().After("gorm:begin_transaction").Before("gorm:before_delete").Register("mediaclean:scope_delete", p.ownScope),
		cb.Update().Before("gorm:update").Register("mediaclean:before_update", p.before("update", update)),
		cb.Update().After("gorm:update").Before("gorm:save_after_associations").Register("mediaclean:after_update", p.after),
		cb.Update().After("*").Register("mediaclean:finish_update", p.finish),
		cb.Delete().Before("gorm:delete").Register("mediaclean:before_delete", p.before("delete", del)),
		cb.Delete().After("gorm:delete").Before("gorm:after_delete").Register("mediaclean:after_delete", p.after),
		cb.Delete().After("*").Register("mediaclean:finish_delete", p.finish),
		cb.Create().Before("gorm:create").Register("mediaclean:before_create", p.beforeCreate),
		cb.Create().After("gorm:create").Before("gorm:save_after_associations").Register("mediaclean:after_create", p.afterCreate),
		cb.Create().After("*").Register("mediaclean:finish_create", p.finish),
	)
}

// ownKey is the gorm instance key of the scope a statement that began its
// own transaction holds from before its associations are saved.
const ownKey = "mediaclean:gormfield_own"

// ownState is a statement's own scope, the context that carries it, and
// the context the statement had before.
type ownState struct {
	own       *filefield.Scope
	ctx, orig context.Context
}

// ownScope gives a statement in a transaction gorm began for it its own
// scope, in its context, before the model's before-hooks run and gorm
// saves its associations: the statements they run on the same transaction
// take its context, so they join that scope (whether or not the
// statement's own table is tracked), and not a scope the context carried
// before, which is another transaction's.
func (p *Plugin) ownScope(db *gorm.DB) {
	if db.Error != nil {
		return
	}
	if _, started := db.InstanceGet("gorm:started_transaction"); !started {
		return
	}
	ownScopeOf(db)
}

// ownScopeOf returns the statement's own scope, made and put in its
// context on first use.
func ownScopeOf(db *gorm.DB) *ownState {
	if o := instance[ownState](db, ownKey); o != nil {
		return o
	}
	ctx := db.Statement.Context
	sctx, own := filefield.NewScope(filefield.WithoutScope(ctx))
	o := &ownState{own: own, ctx: sctx, orig: ctx}
	db.InstanceSet(ownKey, o)
	db.Statement.Context = sctx
	return o
}

// instance returns the *T the statement holds under key, or nil.
func instance[T any](db *gorm.DB, key string) *T {
	v, _ := db.InstanceGet(key)
	t, _ := v.(*T)
	return t
}

// start decides who finishes the file changes of a statement on table m,
// or refuses the statement. It returns nil when the plugin leaves the
// statement alone.
func (p *Plugin) start(db *gorm.DB, m *model) *stmtState {
	ctx := db.Statement.Context
	_, started := db.InstanceGet("gorm:started_transaction")
	_, inTx := db.Statement.ConnPool.(gorm.TxCommitter)
	st := &stmtState{m: m, autocommit: !started && !inTx}
	switch {
	case started || !inTx:
		// The statement commits on its own, at its end. The statements
		// gorm runs for its associations, on the same transaction, take
		// the statement's context: they join its scope.
		o := ownScopeOf(db)
		st.ctx, st.own = o.ctx, o.own
	case filefield.ScopeFrom(ctx) != nil:
		// The statement runs in the innermost savepoint open on its
		// transaction, whichever handle issued it.
		st.ctx = savepoints.innermost(db.Statement.ConnPool, ctx)
	case p.opts.LeaveUnscoped:
		p.warn(ctx, "an unscoped transaction changed a tracked table; its files are left to the orphan finder", "table", m.table)
		return nil
	default:
		_ = db.AddError(fmt.Errorf("gormfield: a tracked model changed (table %s): %w", m.table, ErrNoScope))
		return nil
	}
	db.InstanceSet(stateKey, st)
	return st
}

// before reads the tracked columns of the rows an update or delete will
// touch, with the statement's own conditions: the statement is built
// first (not run), and the read uses the WHERE clause it ended up with,
// in the same transaction, locking the rows where the database can.
func (p *Plugin) before(op string, build func(*gorm.DB)) func(*gorm.DB) {
	return func(db *gorm.DB) {
		if db.Error != nil {
			return
		}
		m := p.modelOf(db)
		if m == nil || (op == "update" && !touches(db, m)) {
			return
		}
		st := p.start(db, m)
		if st == nil {
			return
		}
		dry := db.Session(&gorm.Session{DryRun: true})
		build(dry)
		if dry.Error != nil {
			_ = db.AddError(dry.Error)
			return
		}
		if db.Statement.SQL.Len() == 0 {
			return // nothing to update
		}
		var where []clause.Expression
		if c, ok := db.Statement.Clauses["WHERE"]; ok {
			if w, ok := c.Expression.(clause.Where); ok {
				where = w.Exprs
			}
		}
		rows, err := p.read(db, m, where, true)
		if err != nil {
			_ = db.AddError(fmt.Errorf("gormfield: read %s before the %s: %w", m.table, op, err))
			return
		}
		st.before = rows
		for _, r := range rows {
			st.keys = append(st.keys, r.pk)
		}
	}
}

// after reads the same rows again by primary key and registers the
// deletion of every stale path: a row that is gone (a hard delete), or
// whose column now holds another path. A soft delete leaves the row, so
// its files stay. New paths the statement wrote are claimed.
func (p *Plugin) after(db *gorm.DB) {
	st := stateOf(db)
	if st == nil {
		return
	}
	if db.Error != nil {
		p.failed(db, st)
		return
	}
	defer p.committedAlone(db, st)
	if len(st.before) == 0 {
		return
	}
	now, err := p.readKeys(db, st.m, st.keys)
	if err != nil {
		_ = db.AddError(fmt.Errorf("gormfield: read %s after the statement: %w", st.m.table, err))
		return
	}
	p.settle(db, st, now)
	if len(now) < len(st.before) {
		// Rows the update kept are not found by their old keys: it
		// changed a primary key. The paths it wrote are in its values;
		// claim them, so that the upload commits with the row.
		for i, nw := range assigned(db, st.m) {
			if nw != "" {
				p.claim(st, st.m.columns[i].field, nw)
			}
		}
	}
}

// assigned returns the path an update from a map writes to each tracked
// column, "" where it writes none.
func assigned(db *gorm.DB, m *model) []string {
	var d map[string]any
	switch v := db.Statement.Dest.(type) {
	case map[string]any:
		d = v
	case *map[string]any:
		d = *v
	}
	out := make([]string, len(m.columns))
	for k, v := range d {
		name := k
		if db.Statement.Schema != nil {
			if f := db.Statement.Schema.LookUpField(k); f != nil {
				name = f.DBName
			}
		}
		for i, c := range m.columns {
			if c.name != name {
				continue
			}
			switch p := v.(type) {
			case string:
				out[i] = p
			case *string:
				if p != nil {
					out[i] = *p
				}
			}
		}
	}
	return out
}

// settle compares the rows before and after, registering deletions of
// stale paths and claiming new ones.
func (p *Plugin) settle(db *gorm.DB, st *stmtState, now map[string]row) {
	for k, b := range st.before {
		a, exists := now[k]
		for i, c := range st.m.columns {
			if old := b.vals[i]; old != "" && (!exists || a.vals[i] != old) {
				if _, err := c.field.DeleteUnreferenced(st.ctx, old, filefield.RefCheckerFunc(p.referenced)); err != nil {
					// An unsafe path in the row: nothing is touched.
					p.warn(db.Statement.Context, "a stale path was not deleted", "table", st.m.table, "column", c.name, "path", old, "error", err)
				}
			}
		}
	}
	for k, a := range now {
		b := st.before[k]
		for i, c := range st.m.columns {
			if nw := a.vals[i]; nw != "" && (b.vals == nil || b.vals[i] != nw) {
				p.claim(st, c.field, nw)
			}
		}
	}
}

// claim takes the pending change that stored path into the statement's
// unit of work.
func (p *Plugin) claim(st *stmtState, f *filefield.Field, path string) {
	ch := f.Claim(path)
	if ch != nil {
		// Its old file goes only if no committed row holds it, whatever
		// the scopes say: a savepoint of gorm's own, rolled back, may
		// have undone this statement.
		ch.CheckRefs(filefield.RefCheckerFunc(p.referenced))
	}
	switch {
	case ch == nil:
	case st.own == nil:
		_ = filefield.ScopeFrom(st.ctx).AddClaimed(ch)
	case ch.Scope() != nil:
		// A scope holds it (the caller's, or another request's): it
		// commits with this statement, and stays that scope's to roll
		// back if the statement fails. The statement's own scope holds it
		// too until then, so that the other's rollback cannot delete it
		// between the statement's commit and its end.
		st.early = append(st.early, ch)
		_ = st.own.AddClaimed(ch)
	default:
		_ = st.own.AddClaimed(ch)
	}
}

// failed handles a statement that failed on its own: the new paths it
// meant to write (from its values) are claimed into its own scope, which
// then rolls back. An upload made in no scope is given back to its maker
// then (filefield.KeptGivenBack), since a retry may write its path; one
// made in the caller's scope stays the caller's to finish.
func (p *Plugin) failed(db *gorm.DB, st *stmtState) {
	if st.own == nil {
		return
	}
	for _, vals := range createdPaths(db, st.m) {
		for i, c := range st.m.columns {
			if vals[i] != "" {
				// A change the caller's scope holds stays the caller's.
				if ch := c.field.ClaimUnheld(vals[i]); ch != nil {
					_ = st.own.AddClaimed(ch)
				}
			}
		}
	}
}

// committedAlone finishes now the files of a statement that ran without
// a transaction and succeeded: its write is committed already, so an
// after-hook that fails or panics later cannot make it roll back.
func (p *Plugin) committedAlone(db *gorm.DB, st *stmtState) {
	if !st.autocommit || db.Error != nil || st.own == nil {
		return
	}
	ctx := db.Statement.Context
	for _, ch := range st.early {
		ch.CommitEarly(ctx)
	}
	st.own.Commit(ctx)
}

// finish ends the statement's own scope with its transaction: the stale
// files go after a commit, the new ones after a rollback, and none when
// the outcome is unknown.
func (p *Plugin) finish(db *gorm.DB) {
	defer forget(db)
	o := instance[ownState](db, ownKey)
	if o == nil {
		return // the caller's scope, or a savepoint's, finishes the files
	}
	ctx := db.Statement.Context
	if st := stateOf(db); st != nil && db.Error == nil {
		for _, ch := range st.early {
			ch.CommitEarly(ctx)
		}
	}
	// A connection error (the commit may have reached the server) keeps
	// every file. An untracked statement has a scope too: its
	// associations' files are in it.
	o.own.End(ctx, filefield.CommitError(db.Error))
	db.Statement.Context = o.orig
}

// forget clears the statement's state: a handle reused for another
// statement (res := db.Create(&u); res.Update(...)) keeps its Statement,
// and with it the settings, and must start afresh.
func forget(db *gorm.DB) {
	db.InstanceSet(stateKey, (*stmtState)(nil))
	db.InstanceSet(ownKey, (*ownState)(nil))
}

func stateOf(db *gorm.DB) *stmtState { return instance[stmtState](db, stateKey) }

// touches reports whether an update may write a tracked column: an
// update from a map names its columns; any other may write any.
func touches(db *gorm.DB, m *model) bool {
	var keys []string
	switch d := db.Statement.Dest.(type) {
	case map[string]any:
		for k := range d {
			keys = append(keys, k)
		}
	case *map[string]any:
		for k := range *d {
			keys = append(keys, k)
		}
	default:
		return true
	}
	for _, k := range keys {
		for _, c := range m.columns {
			if k == c.name || (db.Statement.Schema != nil && db.Statement.Schema.LookUpField(k) != nil && db.Statement.Schema.LookUpField(k).DBName == c.name) {
				return true
			}
		}
	}
	return false
}

// beforeCreate starts a create on a tracked table, and for an upsert
// (ON CONFLICT), whose update may overwrite paths, reads the rows it may
// overwrite by primary key.
func (p *Plugin) beforeCreate(db *gorm.DB) {
	if db.Error != nil {
		return
	}
	m := p.modelOf(db)
	if m == nil {
		return
	}
	st := p.start(db, m)
	if st == nil {
		return
	}
	if _, upsert := db.Statement.Clauses["ON CONFLICT"]; !upsert {
		return
	}
	keys := createdKeys(db, m)
	rows, err := p.readKeys(db, m, keys)
	if err != nil {
		_ = db.AddError(fmt.Errorf("gormfield: read %s before the upsert: %w", m.table, err))
		return
	}
	st.before = rows
	st.keys = keys
}

// afterCreate claims the paths the new rows hold, and for an upsert
// registers the deletion of the paths it overwrote.
func (p *Plugin) afterCreate(db *gorm.DB) {
	st := stateOf(db)
	if st == nil {
		return
	}
	if db.Error != nil {
		p.failed(db, st)
		return
	}
	defer p.committedAlone(db, st)
	if st.before != nil {
		keys := createdKeys(db, st.m)
		now, err := p.readKeys(db, st.m, keys)
		if err != nil {
			_ = db.AddError(fmt.Errorf("gormfield: read %s after the upsert: %w", st.m.table, err))
			return
		}
		p.settle(db, st, now)
		return
	}
	for _, vals := range createdPaths(db, st.m) {
		for i, c := range st.m.columns {
			if vals[i] != "" {
				p.claim(st, c.field, vals[i])
			}
		}
	}
}

// createdKeys returns the primary keys of the values a create inserts,
// those that have one.
func createdKeys(db *gorm.DB, m *model) [][]any {
	var out [][]any
	eachValue(db, func(get func(string) (any, bool)) {
		k := make([]any, len(m.pks))
		for i, pk := range m.pks {
			v, ok := get(pk)
			if !ok {
				return
			}
			k[i] = v
		}
		out = append(out, k)
	})
	return out
}

// createdPaths returns the tracked columns of each value a create
// inserts.
func createdPaths(db *gorm.DB, m *model) [][]string {
	var out [][]string
	eachValue(db, func(get func(string) (any, bool)) {
		vals := make([]string, len(m.columns))
		for i, c := range m.columns {
			v, _ := get(c.name)
			vals[i] = text(v)
		}
		out = append(out, vals)
	})
	return out
}

// eachValue calls fn for each row a create inserts, with a getter of its
// non-zero columns by database name: structs, slices of structs and maps.
func eachValue(db *gorm.DB, fn func(get func(string) (any, bool))) {
	stmt := db.Statement
	fromMap := func(mv map[string]any) {
		fn(func(col string) (any, bool) {
			if v, ok := mv[col]; ok {
				return v, true
			}
			if stmt.Schema != nil {
				if f := stmt.Schema.LookUpField(col); f != nil {
					v, ok := mv[f.Name]
					return v, ok
				}
			}
			return nil, false
		})
	}
	fromStruct := func(rv reflect.Value) {
		fn(func(col string) (any, bool) {
			if stmt.Schema == nil {
				return nil, false
			}
			f := stmt.Schema.LookUpField(col)
			if f == nil {
				return nil, false
			}
			v, zero := f.ValueOf(stmt.Context, rv)
			return v, !zero
		})
	}
	switch d := stmt.Dest.(type) {
	case map[string]any:
		fromMap(d)
		return
	case *map[string]any:
		fromMap(*d)
		return
	case []map[string]any:
		for _, mv := range d {
			fromMap(mv)
		}
		return
	case *[]map[string]any:
		for _, mv := range *d {
			fromMap(mv)
		}
		return
	}
	rv := reflect.Indirect(stmt.ReflectValue)
	switch rv.Kind() {
	case reflect.Struct:
		fromStruct(rv)
	case reflect.Slice, reflect.Array:
		for i := range rv.Len() {
			fromStruct(reflect.Indirect(rv.Index(i)))
		}
	}
}

// warn logs a warning if the plugin has a logger.
func (p *Plugin) warn(ctx context.Context, msg string, args ...any) {
	if p.opts.Logger != nil {
		p.opts.Logger.WarnContext(ctx, "gormfield: "+msg, args...)
	}
}
