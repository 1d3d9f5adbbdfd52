package infra_test

import (
	"fmt"
	"regexp"
	"strings"
)

// No Bicep compiler can be installed here (none in the reachable
// registries), so the tests read Bicep with this small reader: enough to
// find declarations, blocks, module parameters and literals, and to catch
// unbalanced brackets, unterminated strings and unused parameters. It is
// not a parser; what it cannot see, the first real deployment checks.

// bicepFile is one file, masked for structure.
type bicepFile struct {
	name  string
	src   string // comments blanked, strings intact
	code  string // same length: string contents blanked, interpolations kept as ( expr )
	decls []decl
}

type decl struct {
	kind, name string
	target     string // resource type@version or module path
	pos        int    // offset of the keyword
	hasDefault bool   // params: "= value"
}

func parseBicep(name, text string) (*bicepFile, error) {
	m := &masker{src: []byte(text), code: []byte(text), plain: []byte(text)}
	if err := m.run(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &bicepFile{name: name, src: string(m.plain), code: string(m.code)}
	if err := balanced(f.code); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, ix := range declRE.FindAllStringSubmatchIndex(f.code, -1) {
		d := decl{kind: f.code[ix[2]:ix[3]], name: f.code[ix[4]:ix[5]], pos: ix[0]}
		rest := f.code[ix[5]:]
		if d.kind == "resource" || d.kind == "module" {
			q := strings.IndexByte(rest, '\'')
			if q < 0 {
				return nil, fmt.Errorf("%s: %s %s has no type or path", name, d.kind, d.name)
			}
			start := ix[5] + q + 1
			end := strings.IndexByte(f.code[start:], '\'')
			d.target = f.src[start : start+end]
		}
		if d.kind == "param" {
			line := rest
			if nl := strings.IndexByte(line, '\n'); nl >= 0 {
				line = line[:nl]
			}
			d.hasDefault = strings.Contains(line, "=")
		}
		f.decls = append(f.decls, d)
	}
	return f, nil
}

var declRE = regexp.MustCompile(`(?m)^(targetScope|param|var|resource|module|output|extension)\s+(\w+)`)

// masker blanks comments and string contents, keeping offsets.
type masker struct {
	src, code, plain []byte
	i                int
}

func (m *masker) blank(i int, both bool) {
	if m.src[i] == '\n' {
		return
	}
	m.code[i] = ' '
	if both {
		m.plain[i] = ' '
	}
}

func (m *masker) run() error {
	for m.i < len(m.src) {
		switch {
		case strings.HasPrefix(string(m.src[m.i:]), "//"):
			for m.i < len(m.src) && m.src[m.i] != '\n' {
				m.blank(m.i, true)
				m.i++
			}
		case strings.HasPrefix(string(m.src[m.i:]), "/*"):
			end := strings.Index(string(m.src[m.i:]), "*/")
			if end < 0 {
				return fmt.Errorf("offset %d: unterminated /* comment", m.i)
			}
			for j := m.i; j < m.i+end+2; j++ {
				m.blank(j, true)
			}
			m.i += end + 2
		case m.src[m.i] == '\'':
			if err := m.str(); err != nil {
				return err
			}
		default:
			m.i++
		}
	}
	return nil
}

// str masks one string literal starting at m.i, recursing into
// interpolations.
func (m *masker) str() error {
	start := m.i
	if strings.HasPrefix(string(m.src[m.i:]), "'''") {
		end := strings.Index(string(m.src[m.i+3:]), "'''")
		if end < 0 {
			return fmt.Errorf("offset %d: unterminated ''' string", start)
		}
		for j := m.i + 3; j < m.i+3+end; j++ {
			m.code[j] = '_'
		}
		m.i += end + 6
		return nil
	}
	m.i++
	for m.i < len(m.src) {
		c := m.src[m.i]
		switch {
		case c == '\n':
			return fmt.Errorf("offset %d: string not closed on its line", start)
		case c == '\\':
			m.code[m.i], m.code[m.i+1] = '_', '_'
			m.i += 2
		case c == '\'':
			m.i++
			return nil
		case c == '$' && m.i+1 < len(m.src) && m.src[m.i+1] == '{':
			m.code[m.i], m.code[m.i+1] = ' ', '('
			m.i += 2
			depth := 1
			for m.i < len(m.src) && depth > 0 {
				switch m.src[m.i] {
				case '{':
					depth++
					m.i++
				case '}':
					depth--
					if depth == 0 {
						m.code[m.i] = ')'
					}
					m.i++
				case '\'':
					if err := m.str(); err != nil {
						return err
					}
				case '\n':
					return fmt.Errorf("offset %d: interpolation not closed on its line", start)
				default:
					m.i++
				}
			}
		default:
			m.code[m.i] = '_'
			m.i++
		}
	}
	return fmt.Errorf("offset %d: unterminated string", start)
}

func balanced(code string) error {
	var stack []byte
	line := 1
	pairs := map[byte]byte{')': '(', ']': '[', '}': '{'}
	for i := 0; i < len(code); i++ {
		c := code[i]
		switch c {
		case '\n':
			line++
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("line %d: unbalanced %q", line, c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("%d unclosed brackets at end of file", len(stack))
	}
	return nil
}

// block returns the offsets of the brace block that starts at the first
// '{' at or after from.
func (f *bicepFile) block(from int) (int, int) {
	open := strings.IndexByte(f.code[from:], '{')
	if open < 0 {
		return -1, -1
	}
	open += from
	depth := 0
	for i := open; i < len(f.code); i++ {
		switch f.code[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return open, i + 1
			}
		}
	}
	return -1, -1
}

// declBlock is the body of a declaration (resource, module).
func (f *bicepFile) declBlock(d decl) string {
	s, e := f.block(d.pos)
	if s < 0 {
		return ""
	}
	return f.src[s:e]
}

// topKeys returns the keys of the object block text (plain source) at its
// first level.
func topKeys(block string) []string {
	var keys []string
	depth := 0
	for _, line := range strings.Split(block, "\n") {
		if depth == 1 {
			if m := keyRE.FindStringSubmatch(line); m != nil {
				keys = append(keys, m[1])
			}
		}
		depth += strings.Count(line, "{") + strings.Count(line, "[") - strings.Count(line, "}") - strings.Count(line, "]")
	}
	return keys
}

var keyRE = regexp.MustCompile(`^\s*'?([\w-]+)'?\s*:`)

// uses counts references to an identifier in code, leaving out object keys.
func (f *bicepFile) uses(name string) int {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	n := 0
	for _, ix := range re.FindAllStringIndex(f.code, -1) {
		before := strings.TrimRight(f.code[:ix[0]], " \t")
		after := strings.TrimLeft(f.code[ix[1]:], " \t")
		isKey := strings.HasPrefix(after, ":") && (before == "" || strings.HasSuffix(before, "\n") || strings.HasSuffix(before, "{") || strings.HasSuffix(before, ","))
		if before != "" && strings.HasSuffix(before, ".") {
			continue // a property of something else (x.name)
		}
		if !isKey {
			n++
		}
	}
	return n
}

func (f *bicepFile) find(kind, name string) (decl, bool) {
	for _, d := range f.decls {
		if d.kind == kind && d.name == name {
			return d, true
		}
	}
	return decl{}, false
}
