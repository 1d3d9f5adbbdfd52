package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/shared/request"
)

// The provision queue under a policy: a request the policy refuses, and a
// body that is not JSON at all, are recorded as rejections with the reason
// and completed; nothing reaches the engine's Start.
func TestProvisionQueueAppliesThePolicy(t *testing.T) {
	e := &engine{}
	allowed := "b!ISJs1WRro0y0EWgkUYcktDa0mE8z"
	a := &handlers.App{Engine: e, Log: quiet(), API: http.NotFoundHandler(), Policy: request.Policy{Containers: []string{allowed}}}
	h := handlers.NewMux(quiet(), a.Functions())
	blob := `{"kind":"azureBlob","containerUrl":"https://acct.blob.core.windows.net/src","credential":"managedIdentity"}`
	for _, c := range []struct {
		name, body, says string
	}{
		{"container outside the allow-list", `{"v":1,"source":` + blob + `,"target":{"containerId":"b!b3RoZXItY29udGFpbmVyLWlk"}}`, request.SettingContainers},
		{"local folder with none enabled", `{"v":1,"source":{"kind":"localFolder","path":"/etc"},"target":{"containerId":"` + allowed + `"}}`, request.SettingLocalRoots},
		{"blob on a loopback port", `{"v":1,"source":{"kind":"azureBlob","containerUrl":"http://127.0.0.1:9000/a/src","credential":"managedIdentity"},"target":{"containerId":"` + allowed + `"}}`, request.SettingBlobHosts},
		{"raw garbage", "\x00\xffgarbage", "UTF-8"},
		{"a JSON array", `[{"v":1}]`, "JSON object"},
		{"a JSON string", `"hello"`, "JSON object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			msgID := "policy-" + strings.ReplaceAll(c.name, " ", "-")
			if code := invoke(t, h, "provision", hostPayload(c.body, true, msgID)); code != http.StatusOK {
				t.Fatalf("status %d, want 2xx (completed, not retried)", code)
			}
			reason := e.rejected[request.IDForMessage(msgID)]
			if !strings.Contains(reason, c.says) {
				t.Errorf("rejection %q does not say %q", reason, c.says)
			}
		})
	}
	if len(e.start) != 0 {
		t.Errorf("refused requests started %v", e.start)
	}
	ok := `{"v":1,"source":` + blob + `,"target":{"containerId":"` + allowed + `"}}`
	if code := invoke(t, h, "provision", hostPayload(ok, true, "policy-ok")); code != http.StatusOK || len(e.start) != 1 {
		t.Fatalf("allowed request: status %d, started %v", code, e.start)
	}
}
