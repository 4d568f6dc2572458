package config

import (
	"errors"
	"flag"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
)

// RegisterFlags defines one flag per config key on fs, named exactly as the key:
// -listen=:7373, -log.level=debug, -limits.max_conns=10, -limits.max_frame_size=1MiB,
// -admin.pprof (a bare boolean means true), -auth.tokens=a,b (comma separated; flags
// show in ps, so prefer the file or HAWK_AUTH_TOKENS for tokens).
//
// A malformed value fails at fs.Parse, naming the flag. The flags carry no help text
// and no default until DescribeFlags: every start of the server defines them, only
// -help shows them. The defaults are never merged: Loader takes only the flags the user
// set, so an unset flag cannot mask the file or the environment.
func RegisterFlags(fs *flag.FlagSet) {
	vals := make([]flagValue, len(keys)) // one allocation for all
	for i := range keys {
		vals[i].k = &keys[i]
		fs.Var(&vals[i], keys[i].Name, "")
	}
}

// DescribeFlags gives each flag RegisterFlags defined on fs its help text and the
// default -help shows (the key's, as Load reads it; none for a secret).
func DescribeFlags(fs *flag.FlagSet) {
	for i := range keys {
		k := &keys[i]
		f := fs.Lookup(k.Name)
		if f == nil {
			continue
		}
		if !k.Secret {
			f.DefValue = k.defaultText()
		}
		usage := strings.TrimSuffix(k.Doc, ".")
		if k.Secret {
			usage += "; comma separated (prefer the file or " + k.Env() + ": flags show in ps)"
		}
		class := k.Reload.String()
		// The back-quoted word is what -help shows as the value's name.
		if k.kind != kindBool {
			class = "`" + k.kind.flagType() + "`, " + class
		}
		f.Usage = usage + " (" + class + ")"
	}
}

// defaultText is the default as Load reads it ("1m0s" for 60s, "[]" for no listeners),
// converted without reflection (which would build the keys' index).
func (k *Key) defaultText() string {
	var v any = k.Default
	switch k.kind {
	case kindDuration:
		v, _ = decodeDuration(k.Default)
	case kindSize:
		v, _ = decodeSize(k.Default)
	case kindObjects:
		v = []LegacyListener(nil) // TestKeyDefaultsMatchDefaultsYAML: the default is none
		if k.Name == "udp.listeners" {
			v = []UDPListener(nil)
		}
	}
	return k.format(v)
}

// flagValue holds a flag's text, "" until set; Loader decodes it like an environment
// variable.
type flagValue struct {
	k   *Key
	raw string
}

func (v *flagValue) String() string {
	if v == nil {
		return ""
	}
	return v.raw
}

// Set checks the value now, so that a bad flag fails at parse time with the flag's
// name. Token lists are not checked here: the flag package would quote the whole value
// (secrets and all) in its error; Load reports them by index instead.
func (v *flagValue) Set(s string) error {
	if !v.k.Secret {
		if _, err := v.k.parse(s); err != nil {
			return err
		}
	}
	v.raw = s
	return nil
}

// IsBoolFlag lets -admin.pprof stand alone.
func (v *flagValue) IsBoolFlag() bool { return v != nil && v.k != nil && v.k.kind == kindBool }

// parse decodes a key's value from text with the conversion Load applies to it
// (decodeHook), into a value of its field's type; the error is the hook's reason.
// A scalar or a list of strings is the hook's value itself; listeners go on through
// mapstructure, field by field, as in Load.
func (k *Key) parse(text string) (reflect.Value, error) {
	if k.kind == kindObjects {
		return k.parseObjects(text)
	}
	var raw any = text
	if k.kind == kindSize {
		raw = sizeValue{text}
	}
	v, err := decodeHook(nil, k.fieldType(), raw)
	if err != nil {
		return reflect.Value{}, flagError(err.Error())
	}
	return reflect.ValueOf(v).Convert(k.fieldType()), nil
}

func (k *Key) parseObjects(text string) (reflect.Value, error) {
	v := reflect.New(k.fieldType())
	d, err := mapstructure.NewDecoder(decoderConfig(v.Interface()))
	if err == nil {
		err = d.Decode(text)
	}
	ferrs, err := decodeErrors(err)
	if err != nil {
		return reflect.Value{}, err
	}
	if len(ferrs) > 0 {
		return reflect.Value{}, flagError(strings.TrimPrefix(ferrs[0].String(), ": "))
	}
	return v.Elem(), nil
}

type flagError string

func (e flagError) Error() string { return strings.TrimSpace(string(e)) }

// flagProvider is the koanf provider of the flags in fs that were set and name a key:
// fs.Visit, not VisitAll. (koanf's basicflag provider walks VisitAll: it merges every
// flag's default unless its key already exists, and merges unrelated flags such as
// -config as keys.) It records the source of each key in prov.
type flagProvider struct {
	fs   *flag.FlagSet
	prov map[string]string
}

func (p flagProvider) Read() (map[string]any, error) {
	flat := make(map[string]any)
	if p.fs != nil {
		p.fs.Visit(func(f *flag.Flag) {
			if index().byName[f.Name] != nil {
				flat[f.Name] = f.Value.String()
				p.prov[f.Name] = sourceFlag + f.Name
			}
		})
	}
	return confmap.Provider(flat, ".").Read()
}

func (flagProvider) ReadBytes() ([]byte, error) {
	return nil, errors.New("config: flags are no document")
}
