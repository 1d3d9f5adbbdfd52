package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// azurite is the running Azurite's process and ports, kept so that
// RestartAzurite can bring it back on the same ports and data.
type azurite struct {
	mu    sync.Mutex
	cmd   *exec.Cmd
	ports []int // blob, table, queue
}

func (s *Stack) startAzurite(ctx context.Context) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	blobPort, tablePort := ports[0], ports[1]
	s.azurite = &azurite{ports: ports}
	if err := s.runAzurite(ctx); err != nil {
		return err
	}
	s.BlobEndpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", blobPort, AzuriteAccount)
	s.TableEndpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", tablePort, AzuriteAccount)
	s.StorageConnectionString = fmt.Sprintf(
		"DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;TableEndpoint=%s;",
		AzuriteAccount, AzuriteKey, s.BlobEndpoint, s.TableEndpoint)
	return nil
}

// RestartAzurite stops Azurite and starts it again on the same ports with
// the same --location, as a user restarting the local stack would: blobs
// and table rows written before are there after the restart, and clients
// see connection errors while it is down.
func (s *Stack) RestartAzurite(ctx context.Context) error {
	if s.azurite == nil {
		return fmt.Errorf("stack: Azurite was not started (Options.Azurite or Options.Graph)")
	}
	s.azurite.mu.Lock()
	cmd := s.azurite.cmd
	s.azurite.cmd = nil
	s.azurite.mu.Unlock()
	if cmd != nil {
		s.stopChild(cmd)
	}
	return s.runAzurite(ctx)
}

func (s *Stack) runAzurite(ctx context.Context) error {
	blobPort, tablePort, queuePort := s.azurite.ports[0], s.azurite.ports[1], s.azurite.ports[2]
	loc := filepath.Join(s.Dir, "azurite")
	if err := os.MkdirAll(loc, 0o755); err != nil {
		return fmt.Errorf("stack: azurite dir: %w", err)
	}
	bin := filepath.Join(NodeDir(s.Root), "node_modules", "azurite", "dist", "src", "azurite.js")
	cmd := exec.Command("node", bin,
		"--location", loc,
		"--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(blobPort),
		"--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(tablePort),
		"--queueHost", "127.0.0.1", "--queuePort", strconv.Itoa(queuePort),
	)
	cmd.Dir = loc
	exited, err := s.StartProcess("azurite", cmd)
	if err != nil {
		return err
	}
	for _, p := range []int{blobPort, tablePort} {
		if err := WaitTCP(ctx, "127.0.0.1:"+strconv.Itoa(p), exited, 60*time.Second); err != nil {
			return fmt.Errorf("azurite: %w", err)
		}
	}
	s.azurite.mu.Lock()
	s.azurite.cmd = cmd
	s.azurite.mu.Unlock()
	return nil
}
