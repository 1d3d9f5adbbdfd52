// Package funcpackage builds the Functions app's deployment package: the zip
// Azure unpacks into the app root (/home/site/wwwroot). The real host finds
// functions only in direct subfolders of that root, so the package holds
// host.json, one folder per function with its function.json (copied from
// handlers/<name>/), and the handler built for linux/amd64 with its run bit
// at the path host.json names. Functions are discovered from
// handlers/*/function.json, never listed by hand.
package funcpackage

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Options say what to package.
type Options struct {
	// Root is the repository root (holding host.json, handlers/, cmd/handler).
	Root string
	// Out is the zip to write (replaced atomically).
	Out string
	// Version is stamped into the handler (main.version); empty: "dev".
	Version string
	// GOOS and GOARCH default to linux/amd64, what Azure runs.
	GOOS, GOARCH string
}

// Package describes a written package.
type Package struct {
	// Handler is the handler's path inside the zip (host.json's
	// defaultExecutablePath).
	Handler string
	// Functions are the function names (folder names), sorted.
	Functions []string
	// Files are every entry of the zip, in order.
	Files []string
}

// functionName is the host's rule for function folder names.
var functionName = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]{0,127}$`)

// modTime is fixed so that the same inputs give the same zip bytes.
var modTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Build compiles the handler and writes the package.
func Build(ctx context.Context, o Options) (*Package, error) {
	if o.Root == "" || o.Out == "" {
		return nil, errors.New("funcpackage: Root and Out are required")
	}
	hostJSON, err := os.ReadFile(filepath.Join(o.Root, "host.json"))
	if err != nil {
		return nil, fmt.Errorf("funcpackage: %w", err)
	}
	exe, err := executablePath(hostJSON)
	if err != nil {
		return nil, err
	}
	fns, err := Functions(o.Root)
	if err != nil {
		return nil, err
	}
	if err := checkHandlerClash(exe, fns); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp("", "spemigrate-package-")
	if err != nil {
		return nil, fmt.Errorf("funcpackage: %w", err)
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "handler")
	if err := buildHandler(ctx, o, bin); err != nil {
		return nil, err
	}

	p := &Package{Handler: exe, Functions: fns}
	if err := writeZip(o, p, bin); err != nil {
		return nil, err
	}
	return p, nil
}

// checkHandlerClash rejects a function folder named like the handler path's
// first element: both would land at the same place in the app root.
func checkHandlerClash(exe string, fns []string) error {
	top := strings.SplitN(exe, "/", 2)[0]
	for _, f := range fns {
		if strings.EqualFold(f, top) {
			return fmt.Errorf("funcpackage: function folder %q clashes with the handler path %q from host.json", f, exe)
		}
	}
	return nil
}

// writeZip writes host.json, each function's function.json and the handler
// binary bin to o.Out, recording each entry in p.Files. It writes to
// o.Out+".part" and renames, so o.Out is never left half written.
func writeZip(o Options, p *Package, bin string) error {
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return fmt.Errorf("funcpackage: %w", err)
	}
	part := o.Out + ".part"
	f, err := os.Create(part)
	if err != nil {
		return fmt.Errorf("funcpackage: %w", err)
	}
	defer os.Remove(part)
	zw := zip.NewWriter(f)
	// Modes are set explicitly so the run bit survives a build on any OS.
	err = addFile(zw, p, "host.json", 0o644, filepath.Join(o.Root, "host.json"))
	for _, fn := range p.Functions {
		if err == nil {
			err = addFile(zw, p, fn+"/function.json", 0o644, filepath.Join(o.Root, "handlers", fn, "function.json"))
		}
	}
	if err == nil {
		err = addFile(zw, p, p.Handler, 0o755, bin)
	}
	err = errors.Join(err, zw.Close(), f.Close())
	if err != nil {
		return fmt.Errorf("funcpackage: write %s: %w", o.Out, err)
	}
	if err := os.Rename(part, o.Out); err != nil {
		return fmt.Errorf("funcpackage: %w", err)
	}
	return nil
}

// addFile copies src into the zip as name with the given mode and the fixed
// modTime, and appends name to p.Files.
func addFile(zw *zip.Writer, p *Package, name string, mode os.FileMode, src string) error {
	data, err := os.Open(src)
	if err != nil {
		return err
	}
	defer data.Close()
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modTime}
	h.SetMode(mode)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, data); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p.Files = append(p.Files, name)
	return nil
}

// Functions returns the names of the folders under root/handlers that hold
// a function.json, sorted, after checking them against the host's rules.
func Functions(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "handlers", "*", "function.json"))
	if err != nil {
		return nil, fmt.Errorf("funcpackage: %w", err)
	}
	seen := map[string]string{}
	var fns []string
	for _, m := range matches {
		name := filepath.Base(filepath.Dir(m))
		if !functionName.MatchString(name) || strings.EqualFold(name, "host") {
			return nil, fmt.Errorf("funcpackage: handlers/%s: not a valid function name for the Functions host (letters, digits, _ and -, starting with a letter, not \"host\")", name)
		}
		if other, ok := seen[strings.ToLower(name)]; ok {
			return nil, fmt.Errorf("funcpackage: handlers/%s and handlers/%s differ only in case; the host treats function names case-insensitively", other, name)
		}
		seen[strings.ToLower(name)] = name
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, fmt.Errorf("funcpackage: %w", err)
		}
		var fj struct {
			Bindings []json.RawMessage `json:"bindings"`
		}
		if err := json.Unmarshal(data, &fj); err != nil || len(fj.Bindings) == 0 {
			return nil, fmt.Errorf("funcpackage: handlers/%s/function.json: want a JSON object with a non-empty \"bindings\" array", name)
		}
		fns = append(fns, name)
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("funcpackage: no handlers/*/function.json under %s", root)
	}
	sort.Strings(fns)
	return fns, nil
}

// executablePath returns host.json's customHandler executable as a clean
// slash path inside the app root.
func executablePath(hostJSON []byte) (string, error) {
	var h struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	if err := json.Unmarshal(hostJSON, &h); err != nil {
		return "", fmt.Errorf("funcpackage: host.json: %w", err)
	}
	p := h.CustomHandler.Description.DefaultExecutablePath
	clean := path.Clean(strings.ReplaceAll(p, `\`, "/"))
	if p == "" || path.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "../") || clean == ".." {
		return "", fmt.Errorf("funcpackage: host.json customHandler.description.defaultExecutablePath %q: want a relative path inside the app root, such as bin/handler", p)
	}
	return clean, nil
}

func buildHandler(ctx context.Context, o Options, out string) error {
	goos, goarch, version := o.GOOS, o.GOARCH, o.Version
	if goos == "" {
		goos = "linux"
	}
	if goarch == "" {
		goarch = "amd64"
	}
	if version == "" {
		version = "dev"
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "./cmd/handler")
	cmd.Dir = o.Root
	// A static binary: the worker image's libc is not ours to depend on.
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("funcpackage: go build ./cmd/handler (%s/%s): %w\n%s", goos, goarch, err, strings.TrimSpace(output.String()))
	}
	return nil
}
