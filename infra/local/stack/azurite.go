package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

func (s *Stack) startAzurite(ctx context.Context) error {
	ports, err := FreePorts(3)
	if err != nil {
		return err
	}
	blobPort, tablePort, queuePort := ports[0], ports[1], ports[2]
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
	s.BlobEndpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", blobPort, AzuriteAccount)
	s.TableEndpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", tablePort, AzuriteAccount)
	s.StorageConnectionString = fmt.Sprintf(
		"DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;TableEndpoint=%s;",
		AzuriteAccount, AzuriteKey, s.BlobEndpoint, s.TableEndpoint)
	return nil
}
