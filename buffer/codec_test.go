package buffer

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	r := Record{Seq: 7, ID: "gw-7", Kind: "ehr", Topic: "jt1132/440300/gw/ehr", Payload: []byte(`{"vin":"LSVAA4182E2184847"}`), Created: time.Unix(1795000000, 123456789), Attempts: 3}
	got, err := decodeRecord(7, encodeRecord(&r))
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("record round trip: %+v, %v", got, err)
	}
	d := DeadRecord{Record: r, Reason: "rejected: schema", At: time.Unix(1795000100, 5)}
	gd, err := decodeDead(7, encodeDead(&d))
	if err != nil || !reflect.DeepEqual(gd, d) {
		t.Fatalf("dead round trip: %+v, %v", gd, err)
	}
	kind, n, err := recordMeta(encodeRecord(&r))
	if err != nil || kind != "ehr" || n != len(r.Payload) {
		t.Fatalf("recordMeta: %q %d %v", kind, n, err)
	}
	empty := Record{Seq: 1, Created: time.Unix(0, 0)}
	if got, err := decodeRecord(1, encodeRecord(&empty)); err != nil || len(got.Payload) != 0 || got.ID != "" {
		t.Fatalf("empty record: %+v %v", got, err)
	}
}

func TestCodecRejects(t *testing.T) {
	good := encodeRecord(&Record{ID: "a", Kind: "b", Topic: "c", Payload: []byte("dd"), Created: time.Unix(1, 0)})
	for _, tc := range []struct {
		name string
		v    []byte
		want string
	}{
		{"empty", nil, "empty value"},
		{"version", append([]byte{2}, good[1:]...), "unknown encoding version 2"},
		{"truncated", good[:len(good)-1], "payload: length 2 exceeds the 1 bytes left"},
		{"trailing", append(append([]byte{}, good...), 0), "trailing bytes"},
		{"huge length", []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}, "id: length"},
		{"varint overflow", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...), "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRecord(1, tc.v)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode %x: %v, want an error containing %q", tc.v, err, tc.want)
			}
		})
	}
	if _, err := decodeDead(1, good); err == nil {
		t.Fatal("an outbox value decoded as a dead record")
	}
}

// FuzzDecodeRecord feeds arbitrary stored bytes (a damaged or foreign file) to the decoders:
// they must never panic, and whatever they accept must survive a re-encode unchanged.
func FuzzDecodeRecord(f *testing.F) {
	r := Record{ID: "gw-1", Kind: "ehr", Topic: "t/x", Payload: []byte("{}"), Created: time.Unix(1795000000, 1), Attempts: 2}
	f.Add(encodeRecord(&r))
	f.Add(encodeDead(&DeadRecord{Record: r, Reason: "no", At: time.Unix(5, 0)}))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		if r, err := decodeRecord(9, v); err == nil {
			again, err := decodeRecord(9, encodeRecord(&r))
			if err != nil || !reflect.DeepEqual(again, r) {
				t.Fatalf("record %+v did not survive a re-encode: %+v %v", r, again, err)
			}
			kind, n, err := recordMeta(v)
			if err != nil || kind != r.Kind || n != len(r.Payload) {
				t.Fatalf("recordMeta disagrees with decodeRecord: %q %d %v", kind, n, err)
			}
		}
		if d, err := decodeDead(9, v); err == nil {
			again, err := decodeDead(9, encodeDead(&d))
			if err != nil || !reflect.DeepEqual(again, d) {
				t.Fatalf("dead record %+v did not survive a re-encode: %+v %v", d, again, err)
			}
		}
	})
}
