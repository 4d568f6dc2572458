package udp

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestParseSyslog(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syslogFields
	}{
		{`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event`,
			syslogFields{RFC: 5424, Facility: 20, Severity: 5, Timestamp: "2003-10-11T22:14:15.003Z", Hostname: "mymachine.example.com",
				App: "evntslog", MsgID: "ID47", StructuredData: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]`, Message: "An application event"}},
		{"<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - \xEF\xBB\xBF'su root' failed",
			syslogFields{RFC: 5424, Facility: 4, Severity: 2, Timestamp: "2003-10-11T22:14:15.003Z", Hostname: "mymachine", App: "su", MsgID: "ID47", Message: "'su root' failed"}},
		{`<13>1 - - - - - [a@1 k="v \] x"][b@2]`,
			syslogFields{RFC: 5424, Facility: 1, Severity: 5, StructuredData: `[a@1 k="v \] x"][b@2]`}},
		{`<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8`,
			syslogFields{RFC: 3164, Facility: 4, Severity: 2, Timestamp: "Oct 11 22:14:15", Hostname: "mymachine", App: "su", ProcID: "123", Message: "'su root' failed for lonvick on /dev/pts/8"}},
		{"<14>myapp: hello from python\x00",
			syslogFields{RFC: 3164, Facility: 1, Severity: 6, App: "myapp", Message: "hello from python"}},
		{"<14>no tag here\n", syslogFields{RFC: 3164, Facility: 1, Severity: 6, Message: "no tag here"}},
	} {
		out, ok := parseSyslog(nil, []byte(tc.in))
		if !ok {
			t.Errorf("%q: not parsed", tc.in)
			continue
		}
		var got syslogFields
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: %s: %v", tc.in, out, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestSyslogUnparsedStoredRaw(t *testing.T) {
	for _, in := range []string{"no pri", "<999>1 x", "<13>1 not-a-time h a p m - x", "<13>1 2003-10-11T22:14:15Z h a p m [unclosed", "<13>1 short"} {
		out, ok := parseSyslog(nil, []byte(in))
		if ok || string(out) != in {
			t.Errorf("%q: got %q, %v; want it raw and not parsed", in, out, ok)
		}
	}
}

func FuzzParseSyslog(f *testing.F) {
	f.Add([]byte(`<165>1 2003-10-11T22:14:15.003Z h a p m [x@1 a="b"] msg`))
	f.Add([]byte("<34>Oct 11 22:14:15 host tag[1]: m"))
	f.Fuzz(func(t *testing.T, d []byte) {
		out, ok := parseSyslog(nil, d)
		if ok && len(out) > 0 && !json.Valid(out) {
			t.Fatalf("%q parsed into invalid JSON %q", d, out)
		}
	})
}
