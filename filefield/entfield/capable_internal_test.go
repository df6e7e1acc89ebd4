package entfield

import (
	"context"
	stdsql "database/sql"
	"testing"

	"entgo.io/ent"
	"github.com/stretchr/testify/assert"
)

// noExecQuery is a mutation generated without the sql/execquery
// feature; withQuery has it, but no Tx or IDs methods.
type noExecQuery struct{ ent.Mutation }

type withQuery struct{ ent.Mutation }

func (withQuery) QueryContext(context.Context, string, ...any) (*stdsql.Rows, error) {
	return nil, nil
}

// A mutation that lacks what the hook calls is refused with an error
// that says what to generate.
func TestCapableNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	assert.ErrorContains(t, capable(noExecQuery{}), "--feature sql/execquery")
	assert.ErrorContains(t, capable(withQuery{}), "no Tx() method")
	assert.ErrorContains(t, capable(withQuery{}), "no Tx() method", "cached")
}
