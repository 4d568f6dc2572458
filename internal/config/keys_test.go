package config

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Each key's Default, read as the environment reads it, is the value defaults.yaml
// gives it (TestGeneratedFiles checks the file is rendered from the table; this checks
// the rendering means the same thing).
func TestKeyDefaultsMatchDefaultsYAML(t *testing.T) {
	def := Default()
	for _, k := range Keys() {
		if k.kind == kindList && k.Default == "" {
			if got := k.get(def); len(got.([]string)) != 0 {
				t.Errorf("%s: defaults.yaml has %d values, the table none", k.Name, len(got.([]string)))
			}
			continue
		}
		c := mustLoad(t, &Loader{Env: []string{k.Env() + "=" + k.Default}})
		if !reflect.DeepEqual(c, def) {
			t.Errorf("%s: Default %q reads as %v, defaults.yaml has %v", k.Name, k.Default, k.get(c), k.get(def))
		}
	}
}

// Every key has its facts filled in.
func TestKeyFacts(t *testing.T) {
	for _, k := range Keys() {
		if k.Doc == "" || !strings.HasSuffix(k.Doc, ".") {
			t.Errorf("%s: Doc %q is missing or is not sentences", k.Name, k.Doc)
		}
		if k.Reload != Live && k.Reload != RestartOnly {
			t.Errorf("%s: Reload %v", k.Name, k.Reload)
		}
		if k.Live() != (k.Reload == Live) {
			t.Errorf("%s: Live() disagrees with Reload", k.Name)
		}
	}
	if got := index().byName["limits.max_conns"].Env(); got != "HAWK_LIMITS_MAX_CONNS" {
		t.Errorf("Env() = %s", got)
	}
	if Live.String() != "live" || RestartOnly.String() != "restart-only" {
		t.Errorf("Reload strings: %s %s", Live, RestartOnly)
	}
}

// Keys returns a copy: changing it changes nothing in the package.
func TestKeysIsACopy(t *testing.T) {
	ks := Keys()
	ks[0].Name, ks[0].Default = "changed", "changed"
	if keys[0].Name == "changed" || Keys()[0].Default == "changed" {
		t.Error("Keys() shares the table")
	}
}

// Every key's Example is valid on its own (over the other defaults), differs from the
// default, reads the same from the environment and from a file (as a quoted YAML
// string), and Prepare applies it exactly when the key is Live. The server's tests rely
// on this to check that each live key is applied by a reload.
func TestKeyExamples(t *testing.T) {
	running := Default()
	for _, k := range Keys() {
		env := &Loader{Env: []string{k.Env() + "=" + k.Example}}
		c, err := env.Load()
		if err != nil {
			t.Errorf("%s: Example %q is invalid with the defaults: %v", k.Name, k.Example, err)
			continue
		}
		ch := Diff(running, c)
		if len(ch) != 1 || ch[0].Key != k.Name {
			t.Errorf("%s: Example %q changes %+v, want this key alone", k.Name, k.Example, ch)
			continue
		}
		if ch[0].RestartOnly != (k.Reload == RestartOnly) {
			t.Errorf("%s: Diff says RestartOnly %v, the table %v", k.Name, ch[0].RestartOnly, k.Reload)
		}

		sec, leaf, nested := strings.Cut(k.Name, ".")
		doc := k.Name + ": " + strconv.Quote(k.Example) + "\n"
		if nested {
			doc = sec + ":\n  " + leaf + ": " + strconv.Quote(k.Example) + "\n"
		}
		file := &Loader{File: tempConfig(t, doc), Env: []string{}}
		if fc := mustLoad(t, file); !reflect.DeepEqual(fc, c) {
			t.Errorf("%s: Example %q reads differently from a file (%v) and the environment (%v)", k.Name, k.Example, k.get(fc), k.get(c))
		}

		next, changes, err := Prepare(file, running)
		if k.Live() {
			if err != nil || next == nil || len(changes) != 1 || changes[0].Key != k.Name {
				t.Errorf("%s: a reload to Example %q: %v %v", k.Name, k.Example, changes, err)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || next != nil || len(ve.Errors) != 1 || ve.Errors[0].Key != k.Name || ve.Errors[0].Reason != restartReason {
			t.Errorf("%s: a reload to Example %q is not refused as restart-only: %v", k.Name, k.Example, err)
		}
	}
}

// The Config fields and the table agree both ways, by koanf tag (indexKeys panics
// otherwise; this shows it from the outside).
func TestEveryFieldHasAKey(t *testing.T) {
	var names []string
	walkFields(reflect.TypeFor[Config](), nil, nil, func(path []byte, _ reflect.StructField, _ []int) {
		names = append(names, string(path))
	})
	slices.Sort(names)
	want := knownKeys()
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("fields %v\nkeys   %v", names, want)
	}
}

func TestEnvName(t *testing.T) {
	for _, name := range append(knownKeys(), "a.b-c_d", "naïve.key") {
		if got, want := envName(name), "HAWK_"+strings.ToUpper(strings.ReplaceAll(name, ".", "_")); got != want {
			t.Errorf("envName(%q) = %q, want %q", name, got, want)
		}
	}
	if got := envName("limits.max_conns"); got != "HAWK_LIMITS_MAX_CONNS" {
		t.Errorf("envName(limits.max_conns) = %q", got)
	}
}

// BenchmarkIndexKeys is what every new process pays, once, to index the keys table.
func BenchmarkIndexKeys(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		indexKeys()
	}
}
