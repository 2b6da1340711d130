package drift

import (
	"slices"
	"testing"
)

func schemaOf(objs ...Object) Schema {
	s := Schema{}
	for _, o := range objs {
		s[key(o.Kind, o.Name)] = o
	}
	return s
}

// Compare offline: members of an extra or missing table fold into it, and
// each item's review SQL is derived from the right definition.
func TestCompare(t *testing.T) {
	users := Object{"table", "users", "r p"}
	email := Object{"column", "users.email", "text not null"}
	tests := []struct {
		name           string
		expected, live Schema
		want           []string
		sql            []string
	}{
		{"equal", schemaOf(users, email), schemaOf(users, email), nil, nil},
		{"extra table folds its columns", schemaOf(), schemaOf(users, email),
			[]string{"table users exists live, not in migrations"}, []string{`DROP TABLE "users";`}},
		{"missing table folds its columns", schemaOf(users, email), schemaOf(),
			[]string{"table users missing live"}, []string{""}},
		{"changed column", schemaOf(users, email), schemaOf(users, Object{"column", "users.email", "character varying(320) not null"}),
			[]string{"column users.email: character varying(320) not null live, text not null expected"}, []string{""}},
		{"missing index", schemaOf(users, Object{"index", "users_email_idx", "CREATE INDEX users_email_idx ON public.users USING btree (email)"}), schemaOf(users),
			[]string{"index users_email_idx missing live"}, []string{"CREATE INDEX users_email_idx ON public.users USING btree (email);"}},
		{"disabled trigger", schemaOf(users, Object{"trigger", "users.t", "CREATE TRIGGER t BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION f()"}),
			schemaOf(users, Object{"trigger", "users.t", "CREATE TRIGGER t BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION f() (disabled)"}),
			[]string{"trigger users.t: CREATE TRIGGER t BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION f() (disabled) live, CREATE TRIGGER t BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION f() expected"},
			[]string{"DROP TRIGGER \"t\" ON \"users\";\nCREATE TRIGGER t BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION f();"}},
		{"extension version", schemaOf(Object{"extension", "citext", "1.6"}), schemaOf(Object{"extension", "citext", "1.5"}),
			[]string{"extension citext: 1.5 live, 1.6 expected"}, []string{`ALTER EXTENSION "citext" UPDATE TO '1.6';`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got, sql []string
			for _, it := range Compare(tc.expected, tc.live) {
				got, sql = append(got, it.String()), append(sql, it.SQL)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("items:\n got %q\nwant %q", got, tc.want)
			}
			if !slices.Equal(sql, tc.sql) {
				t.Errorf("sql:\n got %q\nwant %q", sql, tc.sql)
			}
		})
	}
}
