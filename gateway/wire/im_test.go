package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzCheckIMPayload(f *testing.F) {
	// The records gateway/imrecord builds, as its golden files keep them.
	for _, name := range []string{"im_dual_idle.golden.json", "im_free_acceleration.golden.json", "im_no_selftest.golden.json"} {
		b, err := os.ReadFile(filepath.Join("..", "imrecord", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"record":{"SELF_TEST":{"DUAL_IDLE":{"PROCESS_DATA":[{}]}}},"meta":{"revision":1}}`))
	f.Add([]byte(`{"record":{"SELF_TEST":null,"NO_SELF_TEST_REASON":"x","REPAIR_TIME":"2026-11-20 15:42:10"},"meta":{"revision":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckIMPayload(SchemaIM, b)
		if err == nil {
			var p IMPayload
			if json.Unmarshal(b, &p) != nil || p.Validate() != nil {
				t.Fatal("accepted a payload that does not decode and validate")
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "wire: ") {
			t.Fatalf("error without the package prefix: %v", err)
		}
	})
}
