package verify

import "testing"

func TestParseReport(t *testing.T) {
	data := []byte("source_path,version_id,target_path,batch,size,outcome,reason\n" +
		"a.txt,,a.txt,b0,10,imported,\n" +
		"'=cmd.txt,,'=cmd.txt,b0,5,imported,\n" +
		"x:y.txt,,x_y.txt,b0,7,renamed,\"contains ':'; replaced (invalid-character)\"\n" +
		"long,,,,,skipped,too long (path-too-long)\n")
	rows, err := ParseReport(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1].SourcePath != "=cmd.txt" || rows[2].TargetPath != "x_y.txt" || rows[2].Size != 7 {
		t.Fatalf("rows = %+v", rows)
	}
	s := Summarise(rows)
	if s.Items != 4 || s.Outcomes["imported"] != 2 || s.Outcomes["renamed"] != 1 || s.Outcomes["skipped"] != 1 || s.Bytes != 22 {
		t.Errorf("summary = %+v", s)
	}
	if _, err := ParseReport([]byte("path,outcome\n")); err == nil {
		t.Error("a report without the expected columns parsed")
	}
}
