package graphemu

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/google/uuid"
)

// Server is a running (or ready to run) Graph emulator.
type Server struct {
	cfg    Config
	log    *slog.Logger
	blob   *azblob.Client
	cred   *azblob.SharedKeyCredential
	faults faults

	mu         sync.Mutex
	containers map[string]*drive        // by lower-case container id
	provs      map[string]*provisioning // by data container name
	jobs       map[string]*job
	downloads  map[string]download // pre-authenticated download tokens

	queue     chan *job
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error
	url       string
	certPEM   []byte
	pool      *x509.CertPool
	srv       *http.Server
	ln        net.Listener
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New checks cfg and prepares a server; [Server.Start] makes it listen.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("graphemu: config: %w", err)
	}
	cred, err := azblob.NewSharedKeyCredential(cfg.Storage.Account, cfg.Storage.Key)
	if err != nil {
		return nil, fmt.Errorf("graphemu: storage key: %w", err)
	}
	bc, err := azblob.NewClientWithSharedKeyCredential(strings.TrimSuffix(cfg.Storage.BlobEndpoint, "/")+"/", cred, nil)
	if err != nil {
		return nil, fmt.Errorf("graphemu: blob client: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("graphemu: data dir: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		log:        slog.New(slog.DiscardHandler),
		blob:       bc,
		cred:       cred,
		containers: map[string]*drive{},
		provs:      map[string]*provisioning{},
		jobs:       map[string]*job{},
		downloads:  map[string]download{},
		queue:      make(chan *job, 1024),
		done:       make(chan struct{}),
	}
	s.faults.counts = map[string]int64{}
	if cfg.FaultsFile != "" {
		ff, err := readFaultsFile(cfg.FaultsFile)
		if err != nil {
			return nil, fmt.Errorf("graphemu: config: FaultsFile: %w", err)
		}
		cfg.Faults = append(cfg.Faults, ff.Rules...)
		if ff.JobFaults != nil {
			cfg.JobFaults = *ff.JobFaults
			s.cfg.JobFaults = *ff.JobFaults
		}
	}
	for _, f := range cfg.Faults {
		if err := s.faults.add(f); err != nil {
			return nil, fmt.Errorf("graphemu: config: Faults: %w", err)
		}
	}
	for _, c := range cfg.Containers {
		d, err := newDrive(c, filepath.Join(cfg.DataDir, safeName(c.ID)))
		if err != nil {
			return nil, err
		}
		if err := d.seed(append(slices.Clone(cfg.Knobs.Existing), c.Existing...), cfg.Now().UTC().Truncate(time.Second)); err != nil {
			return nil, err
		}
		s.containers[strings.ToLower(c.ID)] = d
	}
	return s, nil
}

// AddContainer adds an SPE container while the server runs, e.g. an empty
// one per test. Its id must be new.
func (s *Server) AddContainer(c Container) error {
	cfg := Config{Containers: []Container{c}, Storage: s.cfg.Storage, DataDir: s.cfg.DataDir}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("graphemu: add container: %w", err)
	}
	c = cfg.Containers[0]
	d, err := newDrive(c, filepath.Join(s.cfg.DataDir, safeName(c.ID)))
	if err != nil {
		return err
	}
	if err := d.seed(append(slices.Clone(s.cfg.Knobs.Existing), c.Existing...), s.cfg.Now().UTC().Truncate(time.Second)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.containers[strings.ToLower(c.ID)] != nil {
		return fmt.Errorf("graphemu: add container: %q already exists", c.ID)
	}
	s.containers[strings.ToLower(c.ID)] = d
	return nil
}

// SetLogger sets where the server logs (default: nowhere).
func (s *Server) SetLogger(l *slog.Logger) { s.log = l }

// Start listens on 127.0.0.1 on a free port with a fresh self-signed
// certificate and starts the importer workers. It returns once the listener
// is open.
func (s *Server) Start(ctx context.Context) error {
	cert, certPEM, err := selfSigned()
	if err != nil {
		return fmt.Errorf("graphemu: certificate: %w", err)
	}
	s.certPEM = certPEM
	s.pool = x509.NewCertPool()
	s.pool.AppendCertsFromPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("graphemu: listen: %w", err)
	}
	s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	s.url = "https://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(logWriter{s}, "", 0)}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for range s.cfg.Workers {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.worker(wctx) }()
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	return nil
}

// URL is the base URL, without /v1.0 or /beta.
func (s *Server) URL() string { return s.url }

// AdminURL is the base of the admin endpoint.
func (s *Server) AdminURL() string { return s.url + "/_admin" }

// CertPEM is the server certificate in PEM form.
func (s *Server) CertPEM() []byte { return s.certPEM }

// CertPool trusts the server certificate.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// HTTPClient returns a client that trusts the server certificate.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS12}}}
}

// Close stops the listener and the workers. Jobs in flight are abandoned.
// It is safe to call more than once.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.closeErr = s.srv.Shutdown(ctx)
		close(s.done)
		s.cancel()
		s.wg.Wait()
		if errors.Is(s.closeErr, http.ErrServerClosed) {
			s.closeErr = nil
		}
	})
	return s.closeErr
}

func selfSigned() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "graphemu local Graph emulator"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	return cert, certPEM, err
}

// logWriter sends net/http's own messages (TLS handshake failures from
// clients that do not trust the certificate, …) to the server's logger.
type logWriter struct{ s *Server }

func (w logWriter) Write(p []byte) (int, error) {
	w.s.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}

type ctxKey int

const reqIDKey ctxKey = 0

// ServeHTTP routes Graph calls (under /v1.0 and /beta), the admin endpoint
// and the verification endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := uuid.NewString()
	w.Header().Set("request-id", reqID)
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	}
	r = r.WithContext(context.WithValue(r.Context(), reqIDKey, reqID))
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/_admin/"); ok {
		s.serveAdmin(w, r, rest)
		return
	}
	if tok, ok := strings.CutPrefix(p, "/_download/"); ok && r.Method == http.MethodGet {
		s.serveDownload(w, r, tok)
		return
	}
	if rest, ok := strings.CutPrefix(p, "/_emulator/"); ok {
		s.serveAdmin(w, r, rest)
		return
	}
	var version, rest string
	switch {
	case strings.HasPrefix(p, "/v1.0/"):
		version, rest = "v1.0", p[len("/v1.0/"):]
	case strings.HasPrefix(p, "/beta/"):
		version, rest = "beta", p[len("/beta/"):]
	default:
		writeError(w, r, http.StatusBadRequest, "BadRequest", "", "Invalid version: use /v1.0 or /beta.")
		return
	}
	route, handler := s.route(r.Method, version, rest)
	if handler == nil {
		writeError(w, r, http.StatusBadRequest, "BadRequest", "", fmt.Sprintf("Resource not found for the segment '%s'.", rest))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || len(strings.TrimSpace(r.Header.Get("Authorization"))) <= len("Bearer") {
		s.faults.hit(route)
		writeError(w, r, http.StatusUnauthorized, "InvalidAuthenticationToken", "", "Access token is empty.")
		return
	}
	if fr := s.faults.hit(route); fr != nil {
		writeFault(w, r, fr)
		return
	}
	if msg := s.denied(r); msg != "" {
		writeError(w, r, http.StatusForbidden, "accessDenied", "", msg)
		return
	}
	handler(w, r)
}

// route maps a path (after the version prefix) to a route name and handler.
func (s *Server) route(method, version, rest string) (string, http.HandlerFunc) {
	if cr, ok := strings.CutPrefix(rest, "storage/fileStorage/containers/"); ok {
		seg := strings.Split(cr, "/")
		cid := seg[0]
		switch {
		case len(seg) == 2 && seg[1] == "provisionMigrationContainers" && method == http.MethodPost:
			return RouteProvision, func(w http.ResponseWriter, r *http.Request) { s.handleProvision(w, r, cid) }
		case len(seg) == 2 && seg[1] == "migrationJobs" && method == http.MethodPost:
			return RouteCreateJob, func(w http.ResponseWriter, r *http.Request) { s.handleCreateJob(w, r, cid) }
		case len(seg) == 2 && seg[1] == "migrationJobs" && method == http.MethodGet:
			// Listed in the SDKs, not documented (spec §2.5).
			return RouteListJobs, func(w http.ResponseWriter, r *http.Request) {
				writeError(w, r, http.StatusNotImplemented, "notSupported", "", "Listing migration jobs is not a documented operation.")
			}
		case len(seg) == 3 && seg[1] == "migrationJobs" && method == http.MethodDelete:
			return RouteDeleteJob, func(w http.ResponseWriter, r *http.Request) { s.handleDeleteJob(w, r, cid, seg[2]) }
		case len(seg) == 3 && seg[1] == "migrationJobs" && method == http.MethodGet:
			return RouteGetJob, func(w http.ResponseWriter, r *http.Request) { s.handleGetJob(w, r, cid, seg[2]) }
		case len(seg) == 4 && seg[1] == "migrationJobs" && seg[3] == "progressEvents" && method == http.MethodGet:
			return RouteProgressEvents, func(w http.ResponseWriter, r *http.Request) { s.handleProgressEvents(w, r, version, cid, seg[2]) }
		}
		return "", nil
	}
	if dr, ok := strings.CutPrefix(rest, "drives/"); ok {
		return s.driveRoute(method, dr)
	}
	return "", nil
}

// graphVersion is "v1.0" or "beta", from the request path.
func graphVersion(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, "/beta/") {
		return "beta"
	}
	return "v1.0"
}

// writeError writes the Graph error envelope.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, innerCode, msg string) {
	reqID, _ := r.Context().Value(reqIDKey).(string)
	inner := map[string]any{
		"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id":        reqID,
		"client-request-id": r.Header.Get("client-request-id"),
	}
	if innerCode != "" {
		inner["code"] = innerCode
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "innerError": inner}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) container(id string) *drive {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containers[strings.ToLower(id)]
}

func containerNotFound(w http.ResponseWriter, r *http.Request, id string) {
	writeError(w, r, http.StatusNotFound, "itemNotFound", "", fmt.Sprintf("The container '%s' was not found.", id))
}

// safeName turns an id into a file name.
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == '!' {
			return '_'
		}
		return r
	}, id)
}
