package config

import (
	"errors"
	"strings"
	"testing"
)

// badValues gives, for every key, values that must be refused (in env/flag text form).
var badValues = map[string][]string{
	"listen":                     {"", "nohost", "127.0.0.1:99999", "127.0.0.1:http", "1.2.3.4:-1"},
	"server_id":                  {"has space", "tab\tid", strings.Repeat("x", 256)},
	"listen_proxy_from":          {"10.0.0.300", "10.0.0.0/33", "balancer"},
	"log.level":                  {"verbose", "INFO", ""},
	"log.format":                 {"xml", ""},
	"auth.tokens":                {"", "a,,b", "ok,has space", strings.Repeat("t", 4097)},
	"auth.credentials":           {"", "web", "web tok", "web tok a b\x01", "w@b tok a", "web sha256:12 a", "web sha256:" + strings.Repeat("g", 64) + " a", "a tok x,a tok2 y", "a tok x,b tok y"},
	"auth.tokens_file":           {"a\x00b"},
	"auth.open":                  {"maybe", ""},
	"heartbeat.interval":         {"ten", "0s", "-1s", "500us"},
	"heartbeat.timeout":          {"-1s", "5s", "10s", "soon"},
	"handshake.timeout":          {"0s", "-5s", "5"},
	"tls.cert_file":              {"a\x00b"},
	"tls.key_file":               {"a\x00b"},
	"tls.min_version":            {"1.1", "1.0", "tls13"},
	"tls.client_ca_file":         {"a\x00b"},
	"tls.client_auth":            {"yes", "request"},
	"tls.client_id_from":         {"san", "email"},
	"tls.expiry_goaway":          {"-1s", "soon"},
	"tls.ticket_keys_file":       {"a\x00b"},
	"tls.ticket_key_rotation":    {"0s", "500ms", "-1h", "daily"},
	"tls.ticket_keys_previous":   {"-1", "16", "few"},
	"limits.max_conns":           {"0", "-3", "many", "1.5"},
	"limits.handshake_rate":      {"-1", "1000000001", "fast", "2.5"},
	"limits.max_frame_size":      {"32", "65MiB", "12XB", "-1"},
	"limits.max_in_flight":       {"0", "-1", "65536", "lots"},
	"limits.frame_timeout":       {"0s", "-1s", "30"},
	"limits.write_timeout":       {"0s", "forever"},
	"spool.dir":                  {"", "   "},
	"spool.fsync":                {"sometimes", "true", ""},
	"spool.segment_size":         {"1024", "4095", "1.5MiB"},
	"spool.max_bytes":            {"-1"},
	"spool.cache_bytes":          {"-1"},
	"spool.max_age":              {"-1s"},
	"spool.discard":              {"oldest", ""},
	"spool.file_mode":            {"", "640x", "0888", "01640", "0440", "0200", "rw-r-----"},
	"dedup.window":               {"0", "32", "1000", "33554432", "-64"},
	"dedup.max_clients":          {"0", "-1", "lots"},
	"dedup.rebuild_bytes":        {"-1", "1.5GiB"},
	"dedup.rebuild_before_ready": {"maybe", ""},
	"drain.timeout":              {"0s", "-1s", "x"},
	"drain.spread":               {"31s", "-1s", "x"},
	"upgrade.pid_file":           {"a\x00b"},
	"upgrade.timeout":            {"0s", "1"},
	"upgrade.handoff":            {"maybe", ""},
	"upgrade.handoff_timeout":    {"0s", "-1s", "1"},
	"admin.addr":                 {"nope", "127.0.0.1:7373", "0.0.0.0:7373", ":99999"},
	"control.socket":             {"/run/" + strings.Repeat("x", 110)},
	"control.mode":               {"rw", "0999", "01777"},
	"admin.pprof":                {"maybe", "yes", ""},
	"destination":                {"disk", "", "JetStream"},
	"jetstream.urls":             {"", "  "},
	"jetstream.stream":           {"", "a.b", "has space"},
	"jetstream.subject":          {"", "a.*", "a.>", ".a", "a..b"},
	"jetstream.creds":            {"a\x00b"},
	"jetstream.tls_ca":           {"a\x00b"},
	"jetstream.tls_cert":         {"a\x00b"},
	"jetstream.tls_key":          {"a\x00b"},
	"jetstream.max_pending":      {"0", "1048577", "x"},
	"jetstream.publish_timeout":  {"0s", "-1s"},
	"jetstream.connect_timeout":  {"0s", "x"},
	"jetstream.retry_after":      {"0s", "-1s"},
	"jetstream.retry_horizon":    {"0s", "x"},
	"jetstream.require_durable":  {"maybe", ""},
	"jetstream.sync_always":      {"maybe", ""},
	"jetstream.mode":             {"buffered", ""},
	"legacy.listeners":           {"{name: m}", "[[", "7"}, // element errors: TestLegacyListenerErrors
	"udp.listeners":              {"{name: u}", "[[", "7"}, // element errors: TestUDPListenerErrors
	"uploads.enabled":            {"maybe", ""},
	"uploads.dir":                {"a\x00b"},
	"uploads.max_file_size":      {"-1", "x"},
	"uploads.client_quota":       {"-1", "1.5GiB"},
	"uploads.total_quota":        {"-1", "x"},
	"uploads.expiry":             {"-1s", "x"},
	"uploads.max_in_flight":      {"0", "2GiB", "x"},
	"uploads.bucket":             {"a.b", "a b"},
	"uploads.bucket_replicas":    {"0", "6", "x"},
	"uploads.bucket_max_bytes":   {"-1", "x"},
	"uploads.bucket_ttl":         {"-1s", "x"},
}

// Every key has bad values, and each is refused with an error naming that key.
func TestValidateEveryKey(t *testing.T) {
	for i := range keys {
		if len(badValues[keys[i].Name]) == 0 {
			t.Errorf("no bad values tested for %s", keys[i].Name)
		}
	}
	for key, vals := range badValues {
		s := index().byName[key]
		if s == nil {
			t.Errorf("unknown key %s in test table", key)
			continue
		}
		for _, v := range vals {
			if strings.ContainsRune(v, 0) { // not representable in an environment
				c := Default()
				s.field(c).SetString(v) // only string keys can hold a NUL
				wantKeys(t, Validate(c), key)
				continue
			}
			_, err := (&Loader{Env: []string{envName(key) + "=" + v}}).Load()
			if err == nil {
				t.Errorf("%s=%q accepted", key, v)
				continue
			}
			wantKeys(t, err, key)
			var ve *ValidationError
			errors.As(err, &ve)
			if len(ve.Errors) != 1 {
				t.Errorf("%s=%q: want one error, got %v", key, v, err)
			}
		}
	}
}

func TestValidateValidEdges(t *testing.T) {
	ok := map[string]string{
		"listen":                ":0",
		"limits.max_frame_size": "64MiB",
		"spool.segment_size":    "4096",
		"drain.spread":          "30s",
		"heartbeat.timeout":     "11s",
		"admin.addr":            "",
		"server_id":             "höst-1",
		"auth.tokens":           "",
		"spool.file_mode":       "600",
	}
	delete(ok, "auth.tokens") // "" is one empty token, which is refused (see badValues)
	for key, v := range ok {
		if _, err := (&Loader{Env: []string{envName(key) + "=" + v}}).Load(); err != nil {
			t.Errorf("%s=%q refused: %v", key, v, err)
		}
	}
	// Admin on the same port as the listener, on another host, is fine; port 0 twice too.
	c := Default()
	c.Listen, c.Admin.Addr = "10.0.0.1:7373", "127.0.0.1:7373"
	if err := Validate(c); err != nil {
		t.Errorf("distinct hosts: %v", err)
	}
	c.Listen, c.Admin.Addr = "127.0.0.1:0", "127.0.0.1:0"
	if err := Validate(c); err != nil {
		t.Errorf("port 0 twice: %v", err)
	}
	if err := Validate(Default()); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// All problems are reported at once, sorted, in the documented format.
func TestValidationErrorListsEverything(t *testing.T) {
	f := tempConfig(t, "spool:\n  fsync: sometimes\nbogus: 1\n")
	_, err := (&Loader{File: f, Env: []string{"HAWK_LISTEN=", "HAWK_NOPE=1"}, Flags: flags(t, "-drain.spread=1m")}).Load()
	wantKeys(t, err, "listen", "spool.fsync", "bogus", "HAWK_NOPE", "drain.spread")
	var ve *ValidationError
	errors.As(err, &ve)
	keys := ve.Keys()
	for i := 1; i < len(keys); i++ {
		if keys[i-1] > keys[i] {
			t.Errorf("not sorted: %v", keys)
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "config: ") || !strings.Contains(msg, `spool.fsync: must be never or always, not "sometimes" (file `+f+")") {
		t.Errorf("message: %s", msg)
	}
	if !strings.Contains(msg, "drain.spread: must not exceed drain.timeout (30s), not 1m0s (flag -drain.spread)") {
		t.Errorf("message: %s", msg)
	}
	if !strings.Contains(msg, "listen: must not be empty (env HAWK_LISTEN)") {
		t.Errorf("message: %s", msg)
	}
}

// Token values never appear in errors, whatever is wrong with them.
func TestSecretsNotInErrors(t *testing.T) {
	const secret = "s3cr3t"
	var errs []error
	_, err := (&Loader{Env: []string{"HAWK_AUTH_TOKENS=" + secret + " x,," + secret}}).Load()
	errs = append(errs, err)
	f := tempConfig(t, "auth:\n  tokens: [\""+secret+"\", 12345, {a: "+secret+"}]\n")
	_, err = (&Loader{File: f, Env: []string{}}).Load()
	errs = append(errs, err)
	f = tempConfig(t, "auth:\n  tokens: {x: "+secret+"}\n")
	_, err = (&Loader{File: f, Env: []string{}}).Load()
	errs = append(errs, err)
	// The flag is not checked at parse time (the flag package would quote it)...
	fs := flags(t, "-auth.tokens="+secret+",,"+secret+"\t")
	_, err = (&Loader{Flags: fs, Env: []string{}}).Load()
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: accepted", i)
			continue
		}
		wantKeys(t, err, "auth.tokens")
		if strings.Contains(err.Error(), secret) {
			t.Errorf("case %d: secret in error: %v", i, err)
		}
	}
}
