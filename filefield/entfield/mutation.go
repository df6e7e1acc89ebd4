package entfield

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// The generated mutation methods the hook uses beyond ent.Mutation. Tx
// and IDs return generated types (the type's ID, the package's Tx), so
// they are called by name; QueryContext comes with the sql/execquery
// feature.
type queryContexter interface {
	QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error)
}

var (
	errorType   = reflect.TypeFor[error]()
	contextType = reflect.TypeFor[context.Context]()
	checked     sync.Map // reflect.Type → error (nil when capable)
)

// capable checks once per mutation type that m has what the hook calls:
// Tx() (T, error), IDs(context.Context) ([]ID, error) and QueryContext.
func capable(m ent.Mutation) error {
	rt := reflect.TypeOf(m)
	if v, ok := checked.Load(rt); ok {
		err, _ := v.(error)
		return err
	}
	var err error
	if _, ok := m.(queryContexter); !ok {
		err = fmt.Errorf("entfield: %T has no QueryContext method: generate the ent code with the sql/execquery feature (ent generate --feature sql/execquery)", m)
	} else if tx, ok := rt.MethodByName("Tx"); !ok || tx.Type.NumIn() != 1 || tx.Type.NumOut() != 2 || tx.Type.Out(1) != errorType {
		err = fmt.Errorf("entfield: %T has no Tx() method as ent generates it", m)
	} else if ids, ok := rt.MethodByName("IDs"); !ok || ids.Type.NumIn() != 2 || ids.Type.In(1) != contextType ||
		ids.Type.NumOut() != 2 || ids.Type.Out(0).Kind() != reflect.Slice || ids.Type.Out(1) != errorType {
		err = fmt.Errorf("entfield: %T has no IDs(context.Context) method as ent generates it", m)
	}
	checked.Store(rt, err)
	return err
}

// inTx reports whether m runs in an ent transaction (client.Tx): its
// generated Tx method returns an error otherwise.
func inTx(m ent.Mutation) bool {
	out := reflect.ValueOf(m).MethodByName("Tx").Call(nil)
	return out[1].IsNil()
}

// ids returns the IDs of the rows m will update or delete, read with m's
// own predicates and in its transaction (the generated IDs method).
func ids(ctx context.Context, m ent.Mutation) ([]any, error) {
	out := reflect.ValueOf(m).MethodByName("IDs").Call([]reflect.Value{reflect.ValueOf(ctx)})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	s := out[0]
	res := make([]any, s.Len())
	for i := range res {
		res[i] = s.Index(i).Interface()
	}
	return res, nil
}

// idBatch bounds the IDs of one read.
const idBatch = 500

// oldPaths returns the distinct values of c ("" for NULL) in the rows m will
// update or delete, read in m's transaction before the statement and
// locked where the database can (SELECT ... FOR UPDATE on PostgreSQL and
// MySQL). An update-one reads its row too, rather than OldField: for
// UpdateOne(entity), OldField answers from the entity in memory, which
// may be older than the row.
func (t *Tracker) oldPaths(ctx context.Context, c *column, m ent.Mutation) ([]string, error) {
	keys, err := ids(ctx, m)
	if err != nil {
		return nil, err
	}
	q := m.(queryContexter)
	seen := map[string]bool{}
	var out []string
	for start := 0; start < len(keys); start += idBatch {
		end := min(start+idBatch, len(keys))
		paths, err := t.readColumn(ctx, q, c, keys[start:end])
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// readColumn reads c in the rows with the given primary keys.
func (t *Tracker) readColumn(ctx context.Context, q queryContexter, c *column, keys []any) ([]string, error) {
	b := entsql.Dialect(t.dialect)
	sel := b.Select(c.name).From(b.Table(c.table).Schema(c.schema)).Where(entsql.In(c.pk, keys...))
	if t.dialect == dialect.Postgres || t.dialect == dialect.MySQL {
		sel.ForUpdate()
	}
	query, args := sel.Query()
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var p stdsql.NullString
		if err := rows.Scan(&p); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, p.String)
	}
	return out, errors.Join(rows.Err(), rows.Close())
}

// newPath returns the path m writes to c, "" when it clears it, and
// whether it writes c at all.
func newPath(m ent.Mutation, name string) (string, bool) {
	if m.FieldCleared(name) {
		return "", true
	}
	v, ok := m.Field(name)
	if !ok {
		return "", false
	}
	return text(v), true
}

// text returns a field value as a string: "" for nil.
func text(v ent.Value) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case *string:
		if v == nil {
			return ""
		}
		return *v
	default:
		return fmt.Sprint(v)
	}
}
