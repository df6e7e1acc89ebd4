package gormfield

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/schema"
)

// row is one tracked row: its primary key and its tracked columns, in
// the order of model.columns ("" for NULL).
type row struct {
	pk   []any
	vals []string
}

// keyBatch bounds the primary keys of one read by key.
const keyBatch = 500

// session returns a fresh statement on db's connection (its transaction,
// if any) and context, with no hooks.
func session(db *gorm.DB, m *model) *gorm.DB {
	q := db.Session(&gorm.Session{NewDB: true, SkipHooks: true, Context: db.Statement.Context})
	if db.Statement.Schema != nil && db.Statement.Schema.Table == m.table {
		// The model resolves clause.PrimaryKey in conditions such as
		// db.Delete(&User{}, 5). Unscoped: the conditions already say
		// what the statement sees of soft-deleted rows.
		q = q.Model(reflect.New(db.Statement.Schema.ModelType).Interface()).Unscoped()
	}
	return q.Table(m.table)
}

// read returns the tracked rows matching where (all rows for none),
// locked for update where the database can.
func (p *Plugin) read(db *gorm.DB, m *model, where []clause.Expression, lock bool) (map[string]row, error) {
	q := session(db, m)
	if len(where) > 0 {
		q = q.Clauses(clause.Where{Exprs: where})
	}
	if lock && canLock(db) {
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	return scanRows(q, m)
}

// readKeys returns the tracked rows with the given primary keys, raw:
// soft-deleted rows included.
func (p *Plugin) readKeys(db *gorm.DB, m *model, keys [][]any) (map[string]row, error) {
	out := map[string]row{}
	for start := 0; start < len(keys); start += keyBatch {
		end := min(start+keyBatch, len(keys))
		column, values := schema.ToQueryValues(m.table, m.pks, keys[start:end])
		q := session(db, m).Clauses(clause.Where{Exprs: []clause.Expression{clause.IN{Column: column, Values: values}}})
		rows, err := scanRows(q, m)
		if err != nil {
			return nil, err
		}
		for k, r := range rows {
			out[k] = r
		}
	}
	return out, nil
}

// scanRows runs q selecting the primary key and tracked columns.
func scanRows(q *gorm.DB, m *model) (map[string]row, error) {
	cols := append([]string(nil), m.pks...)
	for _, c := range m.columns {
		cols = append(cols, c.name)
	}
	var maps []map[string]any
	if err := q.Select(cols).Find(&maps).Error; err != nil {
		return nil, err
	}
	out := make(map[string]row, len(maps))
	for _, mv := range maps {
		r := row{pk: make([]any, len(m.pks)), vals: make([]string, len(m.columns))}
		for i, pk := range m.pks {
			r.pk[i] = mv[pk]
		}
		for i, c := range m.columns {
			r.vals[i] = text(mv[c.name])
		}
		out[keyOf(r.pk)] = r
	}
	return out, nil
}

// keyOf is a map key for a primary key, equal for the values a
// database returns and those a model holds (int64 and uint alike).
func keyOf(pk []any) string {
	var b strings.Builder
	for _, v := range pk {
		fmt.Fprintf(&b, "%q\x00", text(v))
	}
	return b.String()
}

// text returns a column value as a string: "" for NULL.
func text(v any) string {
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
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// canLock reports whether the database takes SELECT ... FOR UPDATE.
func canLock(db *gorm.DB) bool {
	switch db.Dialector.Name() {
	case "postgres", "mysql":
		return true
	}
	return false
}

// referenced reports whether any tracked column of any table holds path,
// in committed rows (soft-deleted ones too: they may be restored). Every
// deletion the plugin registers asks it at Commit, after the transaction
// committed, so a row that a savepoint rolled back, or another row that
// holds the same path, keeps the file.
func (p *Plugin) referenced(ctx context.Context, path string) (bool, error) {
	p.mu.Lock()
	db := p.db
	var cols [][2]string
	for _, m := range p.byTable {
		for _, c := range m.columns {
			cols = append(cols, [2]string{m.table, c.name})
		}
	}
	p.mu.Unlock()
	for _, tc := range cols {
		var n int64
		err := db.Session(&gorm.Session{NewDB: true, SkipHooks: true, Context: ctx}).Table(tc[0]).
			Where(clause.Eq{Column: clause.Column{Name: tc[1]}, Value: path}).Limit(1).Count(&n).Error
		if err != nil {
			return false, err
		}
		if n > 0 {
			return true, nil
		}
	}
	return false, nil
}
