package graph

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
)

// TestSDKLogsCarryNoSecrets turns on every azcore log event while the
// secrets cross the pipeline in both directions (provision response, create
// request, an error quoting a SAS) and searches what was logged.
func TestSDKLogsCarryNoSecrets(t *testing.T) {
	info := testInfo(time.Now().Add(48 * time.Hour))
	var mu sync.Mutex
	var logged strings.Builder
	azlog.SetListener(func(ev azlog.Event, msg string) {
		mu.Lock()
		defer mu.Unlock()
		logged.WriteString(string(ev) + ": " + msg + "\n")
	})
	t.Cleanup(func() { azlog.SetListener(nil) })

	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/provisionMigrationContainers"):
			writeJSON(w, 200, map[string]any{"dataContainerUri": info.DataContainerURI, "metadataContainerUri": info.MetadataContainerURI, "encryptionKey": info.EncryptionKey})
		case n == 2:
			w.Header().Set("retry-after-ms", "1")
			graphError(w, 503, "serviceNotAvailable", "", "busy with "+info.DataContainerURI)
		default:
			graphError(w, 400, "migrationBadRequest", "invalidAzureResource", "bad "+info.DataContainerURI)
		}
	})
	c := rec.client(t, nil)
	ctx := context.Background()
	got, err := c.ProvisionContainers(ctx, testContainer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateJob(ctx, testContainer, got)
	if err == nil {
		t.Fatal("create succeeded")
	}
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	if !strings.Contains(out, "provisionMigrationContainers") {
		t.Fatalf("the SDK logged nothing useful; the test would pass vacuously:\n%s", out)
	}
	for _, secret := range []string{testSig, info.EncryptionKey, "test-token"} {
		if strings.Contains(out, secret) || strings.Contains(err.Error(), secret) {
			t.Errorf("%q appears in the SDK log or the error:\n%s\n%v", secret, out, err)
		}
	}
}
