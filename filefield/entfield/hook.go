package entfield

import (
	"context"
	"fmt"

	"entgo.io/ent"

	"github.com/mediaclean/mediaclean/filefield"
)

// stmt is what the hook carries from before a mutation to after it.
type stmt struct {
	c *column
	// ctx registers changes: in the caller's scope, or in own.
	ctx context.Context
	// own is the mutation's own scope when it commits on its own (no
	// ent transaction), nil otherwise. It ends with the mutation.
	own *filefield.Scope
	// early holds changes of the caller's scope whose new path this
	// mutation wrote on its own: they commit when it commits, since the
	// row is then committed whatever the caller's scope does.
	early []*filefield.Change
	// refs asks the committed rows whether a path is still held.
	refs filefield.RefChecker
}

// mutate runs m through next, registering the file changes of column c.
func (t *Tracker) mutate(ctx context.Context, c *column, m ent.Mutation, next ent.Mutator) (ent.Value, error) {
	if err := t.check(c, m); err != nil {
		return nil, err
	}
	op := m.Op()
	_, writes := newPath(m, c.name)
	switch {
	case op.Is(ent.OpDelete | ent.OpDeleteOne):
	case op.Is(ent.OpUpdate|ent.OpUpdateOne) && writes:
	case op.Is(ent.OpCreate) && writes:
	default:
		v, err := next.Mutate(ctx, m)
		if _, now := newPath(m, c.name); err == nil && now {
			// A hook inside this one set the field after the read that
			// its old path needed.
			t.warn(ctx, "a hook inside entfield's set a tracked field unseen; its files are left to the orphan finder: install entfield's hooks last", "type", m.Type(), "field", c.name)
		}
		return v, err
	}
	st, err := t.start(ctx, c, m)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return next.Mutate(ctx, m) // left unscoped
	}
	return st.run(ctx, t, m, next)
}

// start decides who finishes the file changes of m, or refuses it. It
// returns nil when the hook leaves m alone.
func (t *Tracker) start(ctx context.Context, c *column, m ent.Mutation) (*stmt, error) {
	st := &stmt{c: c, refs: filefield.RefCheckerFunc(t.referenced)}
	switch {
	case !inTx(m):
		// The statement commits on its own, inside next.Mutate.
		st.ctx, st.own = filefield.NewScope(filefield.WithoutScope(ctx))
	case filefield.ScopeFrom(ctx) != nil:
		st.ctx = ctx
	case t.opts.LeaveUnscoped:
		t.warn(ctx, "an unscoped ent transaction changed a tracked field; its files are left to the orphan finder", "type", m.Type(), "field", c.name)
		return nil, nil
	default:
		return nil, fmt.Errorf("entfield: a tracked field changed (%s.%s): %w", m.Type(), c.name, ErrNoScope)
	}
	return st, nil
}

// run reads the old paths, runs the mutation and registers its file
// changes: the deletion of each path it made stale, and the pending
// upload of the path it wrote (filefield.Field.Claim).
func (st *stmt) run(ctx context.Context, t *Tracker, m ent.Mutation, next ent.Mutator) (v ent.Value, err error) {
	var olds []string
	if !m.Op().Is(ent.OpCreate) {
		olds, err = t.oldPaths(ctx, st.c, m)
		if err != nil {
			st.finish(ctx, m, err)
			return nil, fmt.Errorf("entfield: read %s.%s before the %s: %w", st.c.table, st.c.name, m.Op(), err)
		}
	}
	finished := false
	defer func() {
		if !finished {
			// A hook inside this one panicked: the statement may have
			// committed or not. Keep every file.
			st.finish(ctx, m, filefield.ErrCommitUnknown)
		}
	}()
	v, err = next.Mutate(ctx, m)
	finished = true
	if err != nil {
		st.failed(ctx, t, m, err)
		return v, err
	}
	nw, _ := newPath(m, st.c.name)
	if m.Op().Is(ent.OpDelete | ent.OpDeleteOne) {
		nw = ""
	}
	changed := false
	for _, old := range olds {
		if old == nw {
			continue
		}
		changed = true
		if old == "" {
			continue
		}
		if _, err := st.c.field.DeleteUnreferenced(st.ctx, old, filefield.RefCheckerFunc(t.referenced)); err != nil {
			// An unsafe path in the row: nothing is touched.
			t.warn(ctx, "a stale path was not deleted", "table", st.c.table, "column", st.c.name, "path", old, "error", err)
		}
	}
	if nw != "" && (changed || m.Op().Is(ent.OpCreate)) {
		st.claim(nw)
	}
	st.finish(ctx, m, nil)
	return v, nil
}

// failed registers the file changes of a mutation that returned err.
func (st *stmt) failed(ctx context.Context, t *Tracker, m ent.Mutation, err error) {
	nw, _ := newPath(m, st.c.name)
	if m.Op().Is(ent.OpDelete | ent.OpDeleteOne) {
		nw = ""
	}
	if st.own == nil {
		if nw != "" {
			// In the caller's transaction, the write may have happened
			// before a hook inside this one failed, and fn may go on
			// and commit: the transaction's scope takes the upload in
			// (its rollback gives it back to its maker), and its old
			// file goes only if no committed row holds it.
			st.claim(nw)
		}
		return
	}
	if nw != "" {
		// On its own, the statement may have committed before a hook
		// inside this one (a schema hook) failed, even with a
		// constraint error (an audit row of its own): the rows say.
		switch used, rerr := t.referenced(context.WithoutCancel(ctx), nw); {
		case rerr != nil:
			st.finish(ctx, m, fmt.Errorf("%w: %w", filefield.ErrCommitUnknown, err))
			return
		case used:
			// Committed: the new file stays with its row; the stale
			// ones are left to the orphan finder.
			st.claim(nw)
			st.finish(ctx, m, nil)
			return
		}
	}
	st.finish(ctx, m, err)
}

// claim takes the pending change that stored path into the mutation's
// unit of work.
func (st *stmt) claim(path string) {
	ch := st.c.field.Claim(path)
	if ch != nil {
		// Its old file goes only if no committed row holds it, whatever
		// the scopes say (another row may hold it too).
		ch.CheckRefs(st.refs)
	}
	switch {
	case ch == nil:
	case st.own == nil:
		_ = filefield.ScopeFrom(st.ctx).AddClaimed(ch)
	case ch.Scope() != nil:
		// A scope holds it (the caller's, or another request's): it
		// commits with this mutation, and stays that scope's to roll
		// back if the mutation fails. The mutation's own scope holds it
		// too until then, so that the other's rollback cannot delete it
		// between the mutation's commit and its end.
		st.early = append(st.early, ch)
		_ = st.own.AddClaimed(ch)
	default:
		_ = st.own.AddClaimed(ch)
	}
}

// finish ends the mutation's own scope: the stale files go after a
// commit; after a failure the new path it meant to write is claimed and
// rolled back (an upload made in no scope is given back to its maker,
// who may retry); an outcome that is unknown (a connection error, a
// panic) keeps every file. In the caller's scope it does nothing: the scope
// finishes with the transaction.
func (st *stmt) finish(ctx context.Context, m ent.Mutation, err error) {
	if st.own == nil {
		return
	}
	if err == nil {
		for _, ch := range st.early {
			ch.CommitEarly(ctx)
		}
	} else if nw, _ := newPath(m, st.c.name); nw != "" {
		// A change the caller's scope holds stays the caller's.
		if ch := st.c.field.ClaimUnheld(nw); ch != nil {
			_ = st.own.AddClaimed(ch)
		}
	}
	st.own.End(ctx, filefield.CommitError(err))
}
