package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// The emulator accepts any SAS token; these are the placeholder key name and
// key its connection string carries, as Microsoft's own emulator uses.
const (
	ServiceBusKeyName = "RootManageSharedAccessKey"
	ServiceBusKey     = "SAS_KEY_VALUE"
)

// serviceBusFields are the Stack fields describing the Service Bus emulator.
type serviceBusFields struct {
	// ServiceBusConnectionString reaches the emulator with the unmodified
	// azservicebus client (plain AMQP on loopback, UseDevelopmentEmulator=true).
	ServiceBusConnectionString string
	// ServiceBusAdminURL is the emulator's admin endpoint (http://127.0.0.1:N);
	// GET /stats returns per-queue operation counts as JSON.
	ServiceBusAdminURL string

	sb *serviceBus
}

// serviceBus is the running emulator's process and addresses, kept so that
// RestartServiceBus can bring it back on the same ports and data.
type serviceBus struct {
	mu        sync.Mutex
	cmd       *exec.Cmd
	port      int
	adminPort int
	config    string
	dataDir   string
}

// ServiceBusConfigPath is the default queue configuration: the app's queues
// (provision, stage-batch, submit, poll).
func ServiceBusConfigPath(root string) string {
	return filepath.Join(NodeDir(root), "servicebus", "queues.json")
}

func (s *Stack) startServiceBus(ctx context.Context) error {
	if err := EnsureNodeTools(ctx, s.Root, s.log); err != nil {
		return err
	}
	cfg := s.opts.ServiceBusConfig
	if cfg == "" {
		cfg = ServiceBusConfigPath(s.Root)
	}
	abs, err := filepath.Abs(cfg)
	if err != nil {
		return fmt.Errorf("service bus emulator: config %s: %w", cfg, err)
	}
	ports, err := FreePorts(2)
	if err != nil {
		return err
	}
	port, adminPort := ports[0], ports[1]
	data := filepath.Join(s.Dir, "servicebus")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return fmt.Errorf("service bus emulator: data dir: %w", err)
	}
	s.sb = &serviceBus{port: port, adminPort: adminPort, config: abs, dataDir: data}
	if err := s.runServiceBus(ctx); err != nil {
		return err
	}
	s.ServiceBusConnectionString = fmt.Sprintf(
		"Endpoint=sb://localhost:%d;SharedAccessKeyName=%s;SharedAccessKey=%s;UseDevelopmentEmulator=true",
		port, ServiceBusKeyName, ServiceBusKey)
	s.ServiceBusAdminURL = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	return nil
}

func (s *Stack) runServiceBus(ctx context.Context) error {
	sb := s.sb
	bin := filepath.Join(NodeDir(s.Root), "servicebus", "sbemulator.js")
	cmd := exec.Command("node", bin,
		"--host", "127.0.0.1",
		"--port", strconv.Itoa(sb.port),
		"--admin-port", strconv.Itoa(sb.adminPort),
		"--config", sb.config,
		"--data", sb.dataDir,
	)
	cmd.Dir = sb.dataDir
	// Keep what the emulator says about a failed start (a malformed config
	// file, a port in use) for the error; with Options.Output set the
	// launcher shows it live instead.
	var tail bytes.Buffer
	cmd.Stderr = &tail
	exited, err := s.StartProcess("servicebus", cmd)
	if err != nil {
		return err
	}
	for _, p := range []int{sb.port, sb.adminPort} {
		if err := WaitTCP(ctx, "127.0.0.1:"+strconv.Itoa(p), exited, 30*time.Second); err != nil {
			select {
			case <-exited:
				// Wait has returned, so the captured stderr is complete.
				if msg := bytes.TrimSpace(tail.Bytes()); len(msg) > 0 && cmd.Stderr == &tail {
					return fmt.Errorf("service bus emulator: %w: %s", err, msg)
				}
			case <-time.After(time.Second):
			}
			return fmt.Errorf("service bus emulator: %w", err)
		}
	}
	sb.mu.Lock()
	sb.cmd = cmd
	sb.mu.Unlock()
	return nil
}

// RestartServiceBus stops the Service Bus emulator and starts it again on the
// same ports with the same data directory, as a user restarting the local
// stack would. Messages it had accepted are there after the restart; clients
// reconnect on their own.
func (s *Stack) RestartServiceBus(ctx context.Context) error {
	if s.sb == nil {
		return fmt.Errorf("stack: the Service Bus emulator was not started (Options.ServiceBus)")
	}
	s.sb.mu.Lock()
	cmd := s.sb.cmd
	s.sb.cmd = nil
	s.sb.mu.Unlock()
	if cmd != nil {
		s.stopChild(cmd)
	}
	return s.runServiceBus(ctx)
}

// stopChild stops one process started by StartProcess and forgets it, so
// Close does not signal a process group id that may since have been reused.
func (s *Stack) stopChild(cmd *exec.Cmd) {
	s.mu.Lock()
	var p *proc
	for i, q := range s.procs {
		if q.cmd == cmd {
			p = q
			s.procs = append(s.procs[:i:i], s.procs[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if p == nil {
		return
	}
	stopProcess(p)
}
