package devhost_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/spemigrate/spemigrate/infra/local/stack"
)

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// serviceBusConn reaches the package's Service Bus emulator, started once in
// TestMain with the queues of testdata/queues.json.
var serviceBusConn string

func runWithStack(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg, _ := filepath.Abs(filepath.Join("testdata", "queues.json"))
	s, err := stack.Start(ctx, stack.Options{ServiceBus: true, ServiceBusConfig: cfg})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the Service Bus emulator:", err)
		return 1
	}
	defer s.Close()
	serviceBusConn = s.ServiceBusConnectionString
	return m.Run()
}
