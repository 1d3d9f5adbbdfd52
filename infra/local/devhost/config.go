package devhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// hostConfig is the part of host.json the dev host acts on.
type hostConfig struct {
	ExecutablePath     string
	WorkingDirectory   string
	Arguments          []string
	EnableForwarding   bool
	HandlerPort        int
	RoutePrefix        string
	FunctionTimeout    time.Duration // 0: unbounded ("-1")
	MaxConcurrentCalls int
	MaxLockRenewal     time.Duration // <0: unbounded
	Allowlist          []string      // host.json "functions"
}

// defaultFunctionTimeout is the host's default outside the Consumption plan,
// which is where the app runs (Flex Consumption); see spec §1.5.
const defaultFunctionTimeout = 30 * time.Minute

type rawHostJSON struct {
	Version       string `json:"version"`
	CustomHandler *struct {
		Description *struct {
			DefaultExecutablePath string   `json:"defaultExecutablePath"`
			WorkingDirectory      string   `json:"workingDirectory"`
			Arguments             []string `json:"arguments"`
		} `json:"description"`
		EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
		Port                        int  `json:"port"`
	} `json:"customHandler"`
	FunctionTimeout *string  `json:"functionTimeout"`
	Functions       []string `json:"functions"`
	Extensions      struct {
		HTTP *struct {
			RoutePrefix *string `json:"routePrefix"`
		} `json:"http"`
		ServiceBus *struct {
			MaxConcurrentCalls         *int    `json:"maxConcurrentCalls"`
			MaxAutoLockRenewalDuration *string `json:"maxAutoLockRenewalDuration"`
			AutoCompleteMessages       *bool   `json:"autoCompleteMessages"`
			MessageHandlerOptions      *struct {
				MaxConcurrentCalls   *int    `json:"maxConcurrentCalls"`
				MaxAutoRenewDuration *string `json:"maxAutoRenewDuration"`
			} `json:"messageHandlerOptions"`
		} `json:"serviceBus"`
	} `json:"extensions"`
}

func loadHostJSON(path string) (*hostConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devhost: read %s: %w", path, err)
	}
	var raw rawHostJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("devhost: %s: %w", path, err)
	}
	if raw.Version != "2.0" {
		return nil, fmt.Errorf("devhost: %s: \"version\" must be \"2.0\" (the host.json schema version), got %q", path, raw.Version)
	}
	if raw.CustomHandler == nil || raw.CustomHandler.Description == nil {
		return nil, fmt.Errorf("devhost: %s: customHandler.description is missing; it is what makes the host run a custom handler", path)
	}
	d := raw.CustomHandler.Description
	if d.DefaultExecutablePath == "" {
		return nil, fmt.Errorf("devhost: %s: customHandler.description.defaultExecutablePath is empty; set it to the handler binary", path)
	}
	hc := &hostConfig{
		ExecutablePath:     d.DefaultExecutablePath,
		WorkingDirectory:   d.WorkingDirectory,
		Arguments:          d.Arguments,
		EnableForwarding:   raw.CustomHandler.EnableForwardingHTTPRequest,
		HandlerPort:        raw.CustomHandler.Port,
		RoutePrefix:        "api",
		FunctionTimeout:    defaultFunctionTimeout,
		MaxConcurrentCalls: 16 * runtime.NumCPU(),
		MaxLockRenewal:     5 * time.Minute,
		Allowlist:          raw.Functions,
	}
	if raw.Extensions.HTTP != nil && raw.Extensions.HTTP.RoutePrefix != nil {
		hc.RoutePrefix = strings.Trim(*raw.Extensions.HTTP.RoutePrefix, "/")
	}
	if raw.FunctionTimeout != nil {
		if strings.TrimSpace(*raw.FunctionTimeout) == "-1" {
			hc.FunctionTimeout = 0
		} else {
			d, err := parseTimeSpan(*raw.FunctionTimeout)
			if err != nil || d < time.Second {
				return nil, fmt.Errorf("devhost: %s: functionTimeout %q: want a TimeSpan such as \"00:10:00\" (at least 1 s) or \"-1\"", path, *raw.FunctionTimeout)
			}
			hc.FunctionTimeout = d
		}
	}
	if sb := raw.Extensions.ServiceBus; sb != nil {
		// Legacy keys are read first and overridden by the flat 5.x keys, as
		// the extension does.
		if m := sb.MessageHandlerOptions; m != nil {
			if m.MaxConcurrentCalls != nil {
				hc.MaxConcurrentCalls = *m.MaxConcurrentCalls
			}
			if m.MaxAutoRenewDuration != nil {
				d, err := parseTimeSpan(*m.MaxAutoRenewDuration)
				if err != nil {
					return nil, fmt.Errorf("devhost: %s: extensions.serviceBus.messageHandlerOptions.maxAutoRenewDuration: %w", path, err)
				}
				hc.MaxLockRenewal = d
			}
		}
		if sb.MaxConcurrentCalls != nil {
			hc.MaxConcurrentCalls = *sb.MaxConcurrentCalls
		}
		if sb.MaxAutoLockRenewalDuration != nil {
			d, err := parseTimeSpan(*sb.MaxAutoLockRenewalDuration)
			if err != nil {
				return nil, fmt.Errorf("devhost: %s: extensions.serviceBus.maxAutoLockRenewalDuration: %w", path, err)
			}
			hc.MaxLockRenewal = d
		}
		if hc.MaxConcurrentCalls < 1 {
			return nil, fmt.Errorf("devhost: %s: extensions.serviceBus.maxConcurrentCalls must be at least 1", path)
		}
		if sb.AutoCompleteMessages != nil && !*sb.AutoCompleteMessages {
			return nil, fmt.Errorf("devhost: %s: extensions.serviceBus.autoCompleteMessages=false cannot work with a custom handler (it has no way to settle messages); remove it", path)
		}
	}
	return hc, nil
}

// parseTimeSpan parses the .NET TimeSpan forms host.json uses:
// [-][d.]hh:mm:ss[.fffffff].
func parseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var days int64
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("TimeSpan %q: want [d.]hh:mm:ss[.fff]", s)
	}
	if i := strings.Index(parts[0], "."); i >= 0 {
		d, err := strconv.ParseInt(parts[0][:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("TimeSpan %q: bad days", s)
		}
		days, parts[0] = d, parts[0][i+1:]
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h > 23 || m > 59 || sec >= 60 {
		return 0, fmt.Errorf("TimeSpan %q: want [d.]hh:mm:ss[.fff]", s)
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second))
	if neg {
		d = -d
	}
	return d, nil
}

// localSettings is local.settings.json.
type localSettings struct {
	IsEncrypted bool              `json:"IsEncrypted"`
	Values      map[string]string `json:"Values"`
	Host        struct {
		LocalHTTPPort int `json:"LocalHttpPort"`
	} `json:"Host"`
}

func loadLocalSettings(path string) (*localSettings, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &localSettings{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devhost: read %s: %w", path, err)
	}
	var raw struct {
		IsEncrypted bool                       `json:"IsEncrypted"`
		Values      map[string]json.RawMessage `json:"Values"`
		Host        struct {
			LocalHTTPPort int `json:"LocalHttpPort"`
		} `json:"Host"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("devhost: %s: %w", path, err)
	}
	if raw.IsEncrypted {
		return nil, fmt.Errorf("devhost: %s: IsEncrypted is true; the dev host reads plain values only (decrypt them or set IsEncrypted to false)", path)
	}
	ls := &localSettings{Values: map[string]string{}}
	ls.Host.LocalHTTPPort = raw.Host.LocalHTTPPort
	for k, v := range raw.Values {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("devhost: %s: Values.%s must be a string (app settings are strings only)", path, k)
		}
		ls.Values[k] = s
	}
	return ls, nil
}

// Binding is one entry of a function.json "bindings" array, after %SETTING%
// substitution.
type Binding struct {
	Type      string
	Direction string
	Name      string
	DataType  string

	// Service Bus.
	QueueName        string
	TopicName        string
	SubscriptionName string
	Connection       string

	// Timer.
	Schedule     string
	RunOnStartup bool
	UseMonitor   *bool

	// HTTP.
	Methods   []string
	Route     string
	AuthLevel string
}

// Function is one discovered function.
type Function struct {
	Name     string
	Dir      string
	Disabled bool
	Trigger  Binding
	Outputs  []Binding

	route *routeTemplate
	cron  *cronSchedule
}

// IsHTTP reports whether the function has an HTTP trigger.
func (f *Function) IsHTTP() bool { return f.Trigger.Type == "httpTrigger" }

var functionNameRE = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]{0,127}$`)

// discoverFunctions loads every <dir>/*/function.json.
func discoverFunctions(dir string, settings map[string]string, allow []string) ([]*Function, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("devhost: functions directory: %w", err)
	}
	var fns []*Function
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name(), "function.json")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fn, err := loadFunction(path, e.Name(), settings)
		if err != nil {
			return nil, err
		}
		if len(allow) > 0 && !containsFold(allow, fn.Name) {
			fn.Disabled = true
		}
		fns = append(fns, fn)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].Name < fns[j].Name })
	return fns, nil
}

var knownBindings = map[string]string{
	"serviceBusTrigger": "in",
	"timerTrigger":      "in",
	"httpTrigger":       "in",
	"http":              "out",
	"serviceBus":        "out",
}

// loadFunction reads and validates one function.json the way the host
// indexes a function: its name, whether it is disabled, its bindings, then
// its trigger's route or schedule.
func loadFunction(path, name string, settings map[string]string) (*Function, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("devhost: %s: %s", path, fmt.Sprintf(format, a...))
	}
	if !functionNameRE.MatchString(name) || strings.EqualFold(name, "host") {
		return nil, fail("folder name %q is not a valid function name (letters, digits, _ and -, starting with a letter, not \"host\")", name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devhost: read %s: %w", path, err)
	}
	var raw struct {
		Disabled json.RawMessage  `json:"disabled"`
		Bindings []map[string]any `json:"bindings"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fail("malformed JSON: %v", err)
	}
	fn := &Function{Name: name, Dir: filepath.Dir(path)}
	if fn.Disabled, err = parseDisabled(raw.Disabled, settings); err != nil {
		return nil, fail("%v", err)
	}
	if truthy(lookupFold(settings, "AzureWebJobs."+name+".Disabled")) {
		fn.Disabled = true
	}
	if err := fn.setBindings(raw.Bindings, settings); err != nil {
		return nil, fail("%v", err)
	}
	if err := fn.compileTrigger(); err != nil {
		return nil, fail("%v", err)
	}
	return fn, nil
}

// parseDisabled reads function.json's "disabled": a boolean, or a string
// that is truthy itself or names a truthy app setting. Absent is false.
func parseDisabled(raw json.RawMessage, settings map[string]string) (bool, error) {
	if len(raw) == 0 {
		return false, nil
	}
	var bv bool
	var sv string
	switch {
	case json.Unmarshal(raw, &bv) == nil:
		return bv, nil
	case json.Unmarshal(raw, &sv) == nil:
		return truthy(sv) || truthy(settings[sv]), nil
	default:
		return false, errors.New("\"disabled\" must be a boolean")
	}
}

// setBindings parses the bindings into f.Trigger and f.Outputs. Binding
// names must be unique regardless of case, there must be exactly one
// trigger, and an http output needs an httpTrigger.
func (f *Function) setBindings(raw []map[string]any, settings map[string]string) error {
	if len(raw) == 0 {
		return errors.New("no bindings; a function needs exactly one trigger")
	}
	names := map[string]bool{}
	var triggers int
	for i, rb := range raw {
		bd, err := parseBinding(rb, settings)
		if err != nil {
			return fmt.Errorf("bindings[%d]: %v", i, err)
		}
		if names[strings.ToLower(bd.Name)] {
			return fmt.Errorf("bindings[%d]: binding name %q is used twice", i, bd.Name)
		}
		names[strings.ToLower(bd.Name)] = true
		if strings.HasSuffix(bd.Type, "Trigger") {
			triggers++
			f.Trigger = bd
		} else {
			f.Outputs = append(f.Outputs, bd)
		}
	}
	if triggers != 1 {
		return fmt.Errorf("%d trigger bindings; a function needs exactly one", triggers)
	}
	for _, o := range f.Outputs {
		if o.Type == "http" && !f.IsHTTP() {
			return fmt.Errorf("binding %q: an http output needs an httpTrigger", o.Name)
		}
	}
	return nil
}

// compileTrigger parses an HTTP trigger's route (the function name when
// none is given) or a timer trigger's schedule.
func (f *Function) compileTrigger() error {
	var err error
	switch f.Trigger.Type {
	case "httpTrigger":
		rt := f.Trigger.Route
		if rt == "" {
			rt = f.Name
		}
		f.route, err = parseRoute(rt)
		if err != nil {
			return fmt.Errorf("route %q: %v", rt, err)
		}
	case "timerTrigger":
		f.cron, err = parseCron(f.Trigger.Schedule)
		if err != nil {
			return fmt.Errorf("schedule %q: %v", f.Trigger.Schedule, err)
		}
	}
	return nil
}

// parseBinding reads and checks one entry of a function.json "bindings"
// array, resolving %SETTING% in its string properties.
func parseBinding(rb map[string]any, settings map[string]string) (Binding, error) {
	var bd Binding
	if err := parseBindingStrings(&bd, rb, settings); err != nil {
		return bd, err
	}
	if err := parseBindingFlags(&bd, rb); err != nil {
		return bd, err
	}
	return bd, checkBinding(bd, rb)
}

// bindingString returns rb's string property key (case-insensitive) with
// %SETTING% resolved; absent or null is "".
func bindingString(rb map[string]any, settings map[string]string, key string) (string, error) {
	v, ok := getFold(rb, key)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q must be a string", key)
	}
	return resolveSettings(s, settings)
}

// parseBindingStrings fills bd's string fields, checking that the type is
// one the dev host supports, that its direction fits and that it has a name.
func parseBindingStrings(bd *Binding, rb map[string]any, settings map[string]string) error {
	var err error
	if bd.Type, err = bindingString(rb, settings, "type"); err != nil {
		return err
	}
	wantDir, ok := knownBindings[bd.Type]
	if !ok {
		return fmt.Errorf("unknown binding type %q (the dev host supports serviceBusTrigger, serviceBus, timerTrigger, httpTrigger, http)", bd.Type)
	}
	if bd.Direction, err = bindingString(rb, settings, "direction"); err != nil {
		return err
	}
	if !strings.EqualFold(bd.Direction, wantDir) {
		return fmt.Errorf("type %s needs \"direction\": %q, got %q", bd.Type, wantDir, bd.Direction)
	}
	if bd.Name, err = bindingString(rb, settings, "name"); err != nil {
		return err
	}
	if bd.Name == "" {
		return fmt.Errorf("type %s has no \"name\"", bd.Type)
	}
	for key, dst := range map[string]*string{
		"dataType": &bd.DataType, "queueName": &bd.QueueName, "topicName": &bd.TopicName,
		"subscriptionName": &bd.SubscriptionName, "connection": &bd.Connection,
		"schedule": &bd.Schedule, "route": &bd.Route, "authLevel": &bd.AuthLevel,
	} {
		if *dst, err = bindingString(rb, settings, key); err != nil {
			return err
		}
	}
	return nil
}

// parseBindingFlags fills bd's non-string fields: runOnStartup, useMonitor
// and methods (upper-cased).
func parseBindingFlags(bd *Binding, rb map[string]any) error {
	if v, ok := getFold(rb, "runOnStartup"); ok {
		b, ok := v.(bool)
		if !ok {
			return errors.New("\"runOnStartup\" must be a boolean")
		}
		bd.RunOnStartup = b
	}
	if v, ok := getFold(rb, "useMonitor"); ok {
		b, ok := v.(bool)
		if !ok {
			return errors.New("\"useMonitor\" must be a boolean")
		}
		bd.UseMonitor = &b
	}
	if v, ok := getFold(rb, "methods"); ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return errors.New("\"methods\" must be an array of strings")
		}
		for _, m := range list {
			s, ok := m.(string)
			if !ok {
				return errors.New("\"methods\" must be an array of strings")
			}
			bd.Methods = append(bd.Methods, strings.ToUpper(s))
		}
	}
	return nil
}

// checkBinding applies the per-type rules and rejects what the dev host
// does not support (sessions, batches).
func checkBinding(bd Binding, rb map[string]any) error {
	switch bd.Type {
	case "serviceBusTrigger", "serviceBus":
		if (bd.QueueName == "") == (bd.TopicName == "") {
			return fmt.Errorf("type %s needs exactly one of \"queueName\" or \"topicName\"", bd.Type)
		}
		if bd.Type == "serviceBusTrigger" && bd.TopicName != "" && bd.SubscriptionName == "" {
			return errors.New("a topic trigger needs \"subscriptionName\"")
		}
		if v, ok := getFold(rb, "isSessionsEnabled"); ok && v == true {
			return errors.New("\"isSessionsEnabled\": true is not supported by the dev host")
		}
		if v, ok := getFold(rb, "cardinality"); ok && v != nil && !strings.EqualFold(fmt.Sprint(v), "one") {
			return errors.New("\"cardinality\" other than \"one\" is not supported by the dev host")
		}
	case "timerTrigger":
		if bd.Schedule == "" {
			return errors.New("timerTrigger needs \"schedule\"")
		}
	}
	if bd.DataType != "" && !containsFold([]string{"binary", "string", "stream"}, bd.DataType) {
		return fmt.Errorf("\"dataType\" %q: want binary, string or stream", bd.DataType)
	}
	return nil
}

var settingRE = regexp.MustCompile(`%([^%]+)%`)

// resolveSettings replaces %NAME% with the app setting NAME, failing when the
// setting does not exist (the host refuses to index such a function).
func resolveSettings(s string, settings map[string]string) (string, error) {
	var missing string
	out := settingRE.ReplaceAllStringFunc(s, func(tok string) string {
		key := tok[1 : len(tok)-1]
		if v, ok := settings[key]; ok {
			return v
		}
		if v := lookupFold(settings, key); v != "" {
			return v
		}
		if missing == "" {
			missing = key
		}
		return tok
	})
	if missing != "" {
		return "", fmt.Errorf("%q refers to app setting %q, which is not set (add it to local.settings.json Values)", s, missing)
	}
	return out, nil
}

func getFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func lookupFold(m map[string]string, key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func truthy(s string) bool {
	return strings.EqualFold(s, "true") || s == "1"
}
