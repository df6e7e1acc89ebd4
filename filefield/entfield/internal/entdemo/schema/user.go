// Package schema is the ent schema of the seed app.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// User has a picture and a QR code, both stored paths.
type User struct {
	ent.Schema
}

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").Unique(),
		field.String("picture").Default(""),
		field.String("qr_code").Optional().Nillable(),
	}
}
