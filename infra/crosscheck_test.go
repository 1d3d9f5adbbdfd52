package infra_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/spemigrate/spemigrate/handlers"
	"github.com/spemigrate/spemigrate/infra/local/stack"
	"github.com/spemigrate/spemigrate/shared/queue"
	"github.com/spemigrate/spemigrate/shared/state"
)

// inputs are the two sides the cross-check compares: the deployment's text
// files and what the code says.
type inputs struct {
	files    map[string]string // repository-relative path → content
	settings []handlers.Setting
	code     codeFacts
}

// codeFacts are read from the code once per test run.
type codeFacts struct {
	functionJSON  map[string]string // function folder → function.json
	defaultQueues []string          // shared/queue.DefaultQueues
	handlerQueues []string          // handlers.Queue* constants
	emulatorQueue map[string]queueProps
	tables        []string // shared/state's tables + the schedules table
	deps          []string // packages cmd/handler links
}

type queueProps struct {
	LockDuration                     string `json:"lockDuration"`
	MaxDeliveryCount                 int    `json:"maxDeliveryCount"`
	DefaultMessageTimeToLive         string `json:"defaultMessageTimeToLive"`
	DeadLetteringOnMessageExpiration bool   `json:"deadLetteringOnMessageExpiration"`
}

var deployFiles = []string{
	"azure.yaml", "Makefile", "host.json",
	"infra/main.bicep", "infra/resources.bicep", "infra/modules/source-reader.bicep", "infra/main.parameters.json",
}

func loadInputs(t *testing.T) inputs {
	t.Helper()
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	in := inputs{files: map[string]string{}, settings: handlers.Settings}
	for _, p := range deployFiles {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		in.files[p] = string(b)
	}
	// Every .bicep file must be one the check reads.
	bicep, _ := filepath.Glob(filepath.Join(root, "infra", "*.bicep"))
	mods, _ := filepath.Glob(filepath.Join(root, "infra", "modules", "*.bicep"))
	for _, p := range append(bicep, mods...) {
		rel, _ := filepath.Rel(root, p)
		if _, ok := in.files[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s is not in deployFiles: add it so the cross-check reads it", rel)
		}
	}

	c := &in.code
	c.functionJSON = map[string]string{}
	fjs, _ := filepath.Glob(filepath.Join(root, "handlers", "*", "function.json"))
	for _, p := range fjs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c.functionJSON[filepath.Base(filepath.Dir(p))] = string(b)
	}
	q := queue.DefaultQueues()
	c.defaultQueues = []string{q.Provision, q.StageBatch, q.Submit, q.Poll}
	c.handlerQueues = []string{handlers.QueueProvision, handlers.QueueStageBatch, handlers.QueueSubmit, handlers.QueuePoll}
	var qj struct {
		Queues []struct {
			Name string `json:"name"`
			queueProps
		} `json:"queues"`
	}
	b, err := os.ReadFile(filepath.Join(root, "infra", "local", "servicebus", "queues.json"))
	if err == nil {
		err = json.Unmarshal(b, &qj)
	}
	if err != nil {
		t.Fatal(err)
	}
	c.emulatorQueue = map[string]queueProps{}
	for _, e := range qj.Queues {
		c.emulatorQueue[e.Name] = e.queueProps
	}
	svc, err := aztables.NewServiceClientWithNoCredential("https://example.table.core.windows.net", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.New(svc, state.Options{SealKey: base64.StdEncoding.EncodeToString(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	c.tables = st.TableNames()
	// shared/schedule names its table prefix + a literal.
	sb, err := os.ReadFile(filepath.Join(root, "shared", "schedule", "store.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`prefix \+ "(\w+)"`).FindSubmatch(sb)
	if m == nil {
		t.Fatal(`shared/schedule/store.go: no prefix + "<table>": update the cross-check`)
	}
	c.tables = append(c.tables, string(m[1]))

	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/handler")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/handler: %v", err)
	}
	c.deps = strings.Fields(string(out))
	return in
}

// Role definition IDs the check knows by name.
const (
	roleBlobDataOwner      = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
	roleBlobDataReader     = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
	roleTableDataContrib   = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
	roleSBDataReceiver     = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
	roleSBDataSender       = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
	roleMetricsPublisher   = "3913510d-42f4-4e42-8a64-420c390055eb"
	roleKeyVaultSecretUser = "4633458b-17de-408a-b874-0445c86b69e6"
)

// grant is one role the app identity must hold, at a kind of scope.
type grant struct{ scope, role string }

func (g grant) String() string { return g.scope + " " + g.role }

// sdkRoles maps each Azure SDK data-plane client the handler links to the
// roles it needs. A client that is not here fails the check: decide its
// role, then add it.
var sdkRoles = map[string][]grant{
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables": {
		{"Microsoft.Storage/storageAccounts", roleTableDataContrib},
	},
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus": {
		{"Microsoft.ServiceBus/namespaces", roleSBDataSender},   // scheduled step messages
		{"Microsoft.ServiceBus/namespaces", roleSBDataReceiver}, // the drain's dead-letter reads
	},
	// Sources with credential managedIdentity; staging uploads use the
	// provisioned containers' SAS and need no role.
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob": {
		{"source:Microsoft.Storage/storageAccounts", roleBlobDataReader},
	},
}

// hostRoles are what the Functions host itself needs with identity-based
// settings: host storage and the deployment package, triggers, telemetry
// with local auth off, and the Key Vault reference.
var hostRoles = []grant{
	{"Microsoft.Storage/storageAccounts", roleBlobDataOwner},
	{"Microsoft.ServiceBus/namespaces", roleSBDataReceiver},
	{"Microsoft.Insights/components", roleMetricsPublisher},
	{"Microsoft.KeyVault/vaults", roleKeyVaultSecretUser},
}

// hostSettings are settings only the host reads (not Go code).
var hostSettings = map[string]bool{
	"APPLICATIONINSIGHTS_CONNECTION_STRING":     true,
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": true,
}

// flexForbidden are settings Flex Consumption rejects or replaces, and
// plain connection strings (secrets).
var flexForbidden = []string{
	"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
	"FUNCTIONS_WORKER_PROCESS_COUNT", "AzureWebJobsStorage", handlers.ServiceBusConnectionName, "SPEMIGRATE_STORAGE",
	"SPEMIGRATE_GRAPH_CLIENT_SECRET", "SPEMIGRATE_GRAPH_TOKEN", "SPEMIGRATE_GRAPH_CERTIFICATE_PASSWORD",
}

var appSettingRE = regexp.MustCompile(`\{\s*name:\s*'([^']+)'\s*,\s*value:\s*([^\n]*?)\s*\}\s*\n`)

// crossCheck returns every disagreement between the deployment and the
// code, each a sentence naming both sides.
func crossCheck(in inputs) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	files := map[string]*bicepFile{}
	for p, text := range in.files {
		if strings.HasSuffix(p, ".bicep") {
			f, err := parseBicep(p, text)
			if err != nil {
				bad("%v", err)
				continue
			}
			files[p] = f
		}
	}
	main, res := files["infra/main.bicep"], files["infra/resources.bicep"]
	if main == nil || res == nil {
		return append(problems, "infra/main.bicep or infra/resources.bicep did not parse")
	}

	// ---- structure ----
	for p, f := range files {
		for _, d := range f.decls {
			if (d.kind == "param" || d.kind == "var") && f.uses(d.name) < 2 {
				bad("%s: %s %s is declared but never used", p, d.kind, d.name)
			}
			if d.kind != "module" {
				continue
			}
			modPath := filepath.ToSlash(filepath.Join(filepath.Dir(p), d.target))
			mod := files[modPath]
			if mod == nil {
				bad("%s: module %s: %s is not a file the check reads", p, d.name, modPath)
				continue
			}
			body := f.declBlock(d)
			i := strings.Index(body, "params:")
			passed := map[string]bool{}
			if i >= 0 {
				ps, pe := (&bicepFile{code: body, src: body}).block(i)
				for _, k := range topKeys(body[ps:pe]) {
					passed[k] = true
				}
			}
			for k := range passed {
				if _, ok := mod.find("param", k); !ok {
					bad("%s: module %s passes %s, which %s does not declare", p, d.name, k, modPath)
				}
			}
			for _, md := range mod.decls {
				if md.kind == "param" && !md.hasDefault && !passed[md.name] {
					bad("%s: module %s does not pass %s, which %s requires", p, d.name, md.name, modPath)
				}
			}
			for _, m := range regexp.MustCompile(`\b`+d.name+`\.outputs\.(\w+)`).FindAllStringSubmatch(f.code, -1) {
				if _, ok := mod.find("output", m[1]); !ok {
					bad("%s: %s.outputs.%s: %s has no such output", p, d.name, m[1], modPath)
				}
			}
		}
	}
	var params struct {
		Parameters map[string]json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(in.files["infra/main.parameters.json"]), &params); err != nil {
		bad("infra/main.parameters.json: %v", err)
	}
	for k := range params.Parameters {
		if _, ok := main.find("param", k); !ok {
			bad("infra/main.parameters.json sets %s, which infra/main.bicep does not declare", k)
		}
	}
	for _, d := range main.decls {
		if d.kind == "param" && params.Parameters[d.name] == nil {
			bad("infra/main.bicep param %s is not in infra/main.parameters.json (azd would prompt for it)", d.name)
		}
	}

	// ---- azd wiring ----
	yaml := in.files["azure.yaml"]
	svc := regexp.MustCompile(`(?m)^services:\s*\n(?:\s*#.*\n)*\s+([\w-]+):`).FindStringSubmatch(yaml)
	tag := regexp.MustCompile(`'azd-service-name':\s*'([\w-]+)'`).FindStringSubmatch(res.src)
	if svc == nil || tag == nil || svc[1] != tag[1] {
		bad("azure.yaml service %v and the site's azd-service-name tag %v must be equal (azd finds the app by it)", svc, tag)
	}
	dist := regexp.MustCompile(`(?m)^\s+dist:\s*(\S+)`).FindStringSubmatch(yaml)
	if dist == nil || !strings.Contains(in.files["Makefile"], "./cmd/funcpackage -o "+dist[1]) {
		bad("azure.yaml dist %v is not what make package writes", dist)
	}
	if dist == nil || !strings.Contains(yaml, "run: go run ./cmd/funcpackage -o "+dist[1]) {
		bad("azure.yaml: the prepackage hook must write dist %v (go run ./cmd/funcpackage -o <dist>)", dist)
	}
	if !strings.Contains(yaml, "language: custom") {
		bad("azure.yaml: the service must be language: custom (language: go drops the function.json folders)")
	}

	// ---- app settings ----
	settings := map[string]string{}
	for _, m := range appSettingRE.FindAllStringSubmatch(res.src, -1) {
		if _, dup := settings[m[1]]; dup {
			bad("infra/resources.bicep sets %s twice", m[1])
		}
		settings[m[1]] = m[2]
	}
	if len(settings) == 0 {
		return append(problems, "infra/resources.bicep: no appSettings entries found")
	}
	known := map[string]handlers.Setting{}
	for _, s := range in.settings {
		known[s.Name] = s
		if _, ok := settings[s.Name]; s.Deployed && !ok {
			bad("the code reads %s (handlers.Settings, deployed) but infra/resources.bicep does not set it", s.Name)
		}
	}
	for name, value := range settings {
		_, codeReads := known[name]
		switch {
		case codeReads, hostSettings[name]:
		case strings.HasSuffix(name, "__credential"):
			if _, ok := settings[strings.TrimSuffix(name, "__credential")+"__clientId"]; !ok {
				bad("%s without its __clientId", name)
			}
		default:
			bad("infra/resources.bicep sets %s, which neither the code (handlers.Settings) nor the host reads", name)
		}
		if regexp.MustCompile(`(?i)AccountKey=|SharedAccessKey=|sig=|ClientSecret`).MatchString(value) {
			bad("app setting %s looks like it holds a secret: %s", name, value)
		}
	}
	for _, name := range flexForbidden {
		if _, ok := settings[name]; ok {
			bad("infra/resources.bicep sets %s, which Flex Consumption with identity-based connections must not have", name)
		}
	}
	if v := settings["SPEMIGRATE_STATE_KEY"]; v != "" && !strings.Contains(v, "@Microsoft.KeyVault(") {
		bad("SPEMIGRATE_STATE_KEY must be a Key Vault reference, not %s", v)
	}
	// Identity-based connections: every prefix used as a connection gets
	// managedidentity + the user-assigned identity's client ID.
	connections := map[string]bool{"AzureWebJobsStorage": true}
	for fn, text := range in.code.functionJSON {
		for _, m := range regexp.MustCompile(`"connection"\s*:\s*"([^"]+)"`).FindAllStringSubmatch(text, -1) {
			connections[m[1]] = true
		}
		for _, m := range regexp.MustCompile(`%(\w+)%`).FindAllStringSubmatch(text, -1) {
			if _, ok := settings[m[1]]; !ok {
				bad("handlers/%s/function.json resolves %%%s%%, which infra/resources.bicep does not set", fn, m[1])
			}
		}
	}
	for prefix := range connections {
		if settings[prefix+"__credential"] != "'managedidentity'" {
			bad("%s__credential must be 'managedidentity' (got %q): without it the host ignores __clientId", prefix, settings[prefix+"__credential"])
		}
		if settings[prefix+"__clientId"] != "identity.properties.clientId" {
			bad("%s__clientId must be the user-assigned identity's client ID (got %q)", prefix, settings[prefix+"__clientId"])
		}
	}
	if _, ok := settings["ServiceBusConnection__fullyQualifiedNamespace"]; !ok {
		bad("ServiceBusConnection__fullyQualifiedNamespace is not set")
	}

	// ---- queues ----
	qRE := regexp.MustCompile(`\{\s*name:\s*'([^']+)',\s*lockDuration:\s*'([^']+)',\s*maxDeliveryCount:\s*(\d+)\s*\}`)
	var bicepQueues []string
	ttl := regexp.MustCompile(`var queueDefaultMessageTimeToLive = '([^']+)'`).FindStringSubmatch(res.src)
	for _, m := range qRE.FindAllStringSubmatch(res.src, -1) {
		bicepQueues = append(bicepQueues, m[1])
		want, ok := in.code.emulatorQueue[m[1]]
		if !ok {
			bad("Bicep queue %s is not in infra/local/servicebus/queues.json (the tests' queues)", m[1])
			continue
		}
		if n, _ := strconv.Atoi(m[3]); want.LockDuration != m[2] || want.MaxDeliveryCount != n {
			bad("queue %s: Bicep lockDuration %s maxDeliveryCount %s, the code's queues.json %s %d", m[1], m[2], m[3], want.LockDuration, want.MaxDeliveryCount)
		}
		if ttl == nil || ttl[1] != want.DefaultMessageTimeToLive || !want.DeadLetteringOnMessageExpiration {
			bad("queue %s: TTL %v and dead-lettering differ from queues.json (%+v)", m[1], ttl, want)
		}
	}
	for _, p := range []string{"deadLetteringOnMessageExpiration: true", "requiresDuplicateDetection: true"} {
		if !strings.Contains(res.src, p) {
			bad("the queues need %s (shared/queue relies on it)", p)
		}
	}
	var triggerQueues []string
	for _, text := range in.code.functionJSON {
		for _, m := range regexp.MustCompile(`"queueName"\s*:\s*"([^"]+)"`).FindAllStringSubmatch(text, -1) {
			triggerQueues = append(triggerQueues, m[1])
		}
	}
	for what, names := range map[string][]string{
		"shared/queue.DefaultQueues": in.code.defaultQueues, "handlers.Queue*": in.code.handlerQueues,
		"function.json queueName": triggerQueues, "infra/local/servicebus/queues.json": keys(in.code.emulatorQueue),
	} {
		if !sameSet(names, bicepQueues) {
			bad("queues: Bicep has %v, %s has %v", sorted(bicepQueues), what, sorted(names))
		}
	}

	// ---- tables ----
	tl := regexp.MustCompile(`var tableNames = \[([^\]]*)\]`).FindStringSubmatch(res.src)
	var bicepTables []string
	if tl != nil {
		for _, m := range regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(tl[1], -1) {
			bicepTables = append(bicepTables, m[1])
		}
	}
	if !sameSet(bicepTables, in.code.tables) {
		bad("tables: Bicep creates %v, the code uses %v", sorted(bicepTables), sorted(in.code.tables))
	}

	// ---- roles ----
	want := map[grant]string{}
	for _, g := range hostRoles {
		want[g] = "the Functions host"
	}
	for _, dep := range in.code.deps {
		if !strings.HasPrefix(dep, "github.com/Azure/azure-sdk-for-go/sdk/") || strings.Contains(dep, "/internal") {
			continue
		}
		rest := strings.TrimPrefix(dep, "github.com/Azure/azure-sdk-for-go/sdk/")
		if !strings.HasPrefix(rest, "data/") && !strings.HasPrefix(rest, "messaging/") && !strings.HasPrefix(rest, "storage/") && !strings.HasPrefix(rest, "security/") {
			continue // azcore, azidentity: no data plane of their own
		}
		client := "github.com/Azure/azure-sdk-for-go/sdk/" + strings.Join(strings.SplitN(rest, "/", 3)[:2], "/")
		gs, ok := sdkRoles[client]
		if !ok {
			bad("cmd/handler links %s, whose role the cross-check does not know: add it to sdkRoles and to the Bicep", client)
		}
		for _, g := range gs {
			want[g] = client
		}
	}
	have := identityGrants(files, bad)
	for g, who := range want {
		if !have[g] {
			bad("the app identity lacks %s (needed by %s)", g, who)
		}
	}
	for g := range have {
		if _, ok := want[g]; !ok {
			bad("the app identity holds %s, which nothing needs (least privilege)", g)
		}
	}

	// ---- host.json ----
	var hj struct {
		FunctionTimeout string          `json:"functionTimeout"`
		HTTPWorker      json.RawMessage `json:"httpWorker"`
		CustomHandler   *struct {
			Description *struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
		Extensions struct {
			ServiceBus map[string]json.RawMessage `json:"serviceBus"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal([]byte(in.files["host.json"]), &hj); err != nil {
		bad("host.json: %v", err)
	}
	if hj.CustomHandler == nil || hj.CustomHandler.Description == nil || hj.HTTPWorker != nil {
		bad("host.json: use customHandler.description (not the legacy httpWorker)")
	}
	for _, legacy := range []string{"messageHandlerOptions", "sessionHandlerOptions", "batchOptions"} {
		if hj.Extensions.ServiceBus[legacy] != nil {
			bad("host.json: extensions.serviceBus.%s is a legacy key; use the flat 5.x names", legacy)
		}
	}
	var renewal string
	_ = json.Unmarshal(hj.Extensions.ServiceBus["maxAutoLockRenewalDuration"], &renewal)
	timeout, err1 := timeSpan(hj.FunctionTimeout)
	lock, err2 := timeSpan(renewal)
	if err1 != nil || err2 != nil || lock < timeout {
		bad("host.json: maxAutoLockRenewalDuration %q must be at least functionTimeout %q, or a long step loses its lock and runs twice", renewal, hj.FunctionTimeout)
	}
	sort.Strings(problems)
	return problems
}

// identityGrants reads every role assignment to the app identity: in
// resources.bicep (principal identity.properties.principalId, scope a
// resource declared there) and in the source-reader module.
func identityGrants(files map[string]*bicepFile, bad func(string, ...any)) map[grant]bool {
	have := map[grant]bool{}
	for p, f := range files {
		vars := map[string]string{}
		for _, d := range f.decls {
			if d.kind == "var" {
				end := len(f.src)
				if next := strings.Index(f.code[d.pos+1:], "\n\n"); next >= 0 {
					end = d.pos + 1 + next
				}
				vars[d.name] = f.src[d.pos:end]
			}
		}
		roleIDs := map[string]string{}
		if r, ok := vars["roles"]; ok {
			for _, m := range regexp.MustCompile(`(\w+):\s*'([0-9a-f-]{36})'`).FindAllStringSubmatch(r, -1) {
				roleIDs["roles."+m[1]] = m[2]
			}
		}
		for name, v := range vars {
			if m := regexp.MustCompile(`=\s*'([0-9a-f-]{36})'`).FindStringSubmatch(v); m != nil {
				roleIDs[name] = m[1]
			}
		}
		for _, d := range f.decls {
			if d.kind != "resource" || !strings.HasPrefix(d.target, "Microsoft.Authorization/roleAssignments@") {
				continue
			}
			head := f.src[d.pos:]
			body := f.declBlock(d)
			principal := regexp.MustCompile(`principalId:\s*([\w.]+)`).FindStringSubmatch(body)
			scope := regexp.MustCompile(`scope:\s*(\w+)`).FindStringSubmatch(body)
			roleExpr := regexp.MustCompile(`roleDefinitions',\s*([\w.]+)\)`).FindStringSubmatch(body)
			if principal == nil || scope == nil || roleExpr == nil {
				bad("%s: role assignment %s: principalId, scope or roleDefinitionId not found", p, d.name)
				continue
			}
			switch {
			case p == "infra/resources.bicep" && principal[1] == "identity.properties.principalId":
			case p == "infra/modules/source-reader.bicep" && principal[1] == "principalId":
			default:
				continue // another principal (the deployer)
			}
			sd, ok := f.find("resource", scope[1])
			if !ok {
				bad("%s: role assignment %s: scope %s is not a resource of this file", p, d.name, scope[1])
				continue
			}
			scopeType := strings.SplitN(sd.target, "@", 2)[0]
			if p == "infra/modules/source-reader.bicep" {
				scopeType = "source:" + scopeType
			}
			var ids []string
			if loop := regexp.MustCompile(`^resource \w+ '[^']+' = \[for (\w+) in (\w+):`).FindStringSubmatch(head); loop != nil && roleExpr[1] == loop[1] {
				list := vars[loop[2]]
				if i := strings.LastIndex(list, "["); i >= 0 {
					list = list[i:]
				}
				for _, m := range regexp.MustCompile(`roles\.\w+`).FindAllString(list, -1) {
					ids = append(ids, roleIDs[m])
				}
			} else {
				ids = append(ids, roleIDs[roleExpr[1]])
			}
			for _, id := range ids {
				if id == "" {
					bad("%s: role assignment %s: cannot resolve its role", p, d.name)
					continue
				}
				have[grant{scopeType, id}] = true
			}
		}
	}
	return have
}

func timeSpan(s string) (time.Duration, error) {
	var h, m, sec int
	if _, err := fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec); err != nil {
		return 0, fmt.Errorf("TimeSpan %q: %w", s, err)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec)*time.Second, nil
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Compact(sorted(a)), slices.Compact(sorted(b))) && len(a) > 0
}

func TestInfraMatchesCode(t *testing.T) {
	in := loadInputs(t)
	for _, p := range crossCheck(in) {
		t.Error(p)
	}
}
