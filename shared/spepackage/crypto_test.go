package spepackage

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"testing/iotest"
)

var (
	testKey = mustHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	testIV  = mustHex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func encryptAll(t testing.TB, r io.Reader, key, iv []byte) ([]byte, *EncryptReader) {
	t.Helper()
	er, err := NewEncryptReader(r, key, iv)
	if err != nil {
		t.Fatal(err)
	}
	defer er.Close()
	ct, err := io.ReadAll(er)
	if err != nil {
		t.Fatal(err)
	}
	return ct, er
}

// TestEncryptKnownAnswer checks against a vector produced once with
// `openssl enc -aes-256-cbc -K <key> -iv <iv>` and committed here, so the
// test does not need openssl.
func TestEncryptKnownAnswer(t *testing.T) {
	plain := []byte("spemigrate known answer: SharePoint import!")
	want := mustHex("66e2dff870742ded64103d372ada98667cfbb3985b309d3fd77b05fcc7e0ce0cb6d9367401e04e391e3403a86b172b76")
	ct, er := encryptAll(t, bytes.NewReader(plain), testKey, testIV)
	if !bytes.Equal(ct, want) {
		t.Fatalf("ciphertext\n got %x\nwant %x", ct, want)
	}
	sum := md5.Sum(want)
	if !bytes.Equal(er.MD5(), sum[:]) || er.Size() != int64(len(want)) {
		t.Fatalf("MD5 %x size %d, want %x %d", er.MD5(), er.Size(), sum, len(want))
	}
}

// TestEncryptMatchesOpenSSL encrypts inputs of awkward sizes with openssl
// and with EncryptReader and compares; it needs the openssl binary.
func TestEncryptMatchesOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed; TestEncryptKnownAnswer covers the fixed vector")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 15, 16, 17, 4096, chunkSize - 1, chunkSize, chunkSize + 1, 2*chunkSize + 33}
	if testing.Short() {
		sizes = sizes[:6]
	}
	dir := t.TempDir()
	for _, n := range sizes {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(rng.Uint32())
		}
		key, iv := make([]byte, 32), make([]byte, 16)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		for i := range iv {
			iv[i] = byte(rng.Uint32())
		}
		in := filepath.Join(dir, strconv.Itoa(n))
		if err := os.WriteFile(in, plain, 0o600); err != nil {
			t.Fatal(err)
		}
		want, err := exec.Command(bin, "enc", "-aes-256-cbc", "-K", hex.EncodeToString(key), "-iv", hex.EncodeToString(iv), "-in", in).Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		got, _ := encryptAll(t, bytes.NewReader(plain), key, iv)
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: ciphertext differs from openssl (len %d vs %d)", n, len(got), len(want))
		}
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{0, 1, 15, 16, 17, 31, 32, 1000, chunkSize - 17, chunkSize - 1, chunkSize, chunkSize + 1, chunkSize + 16, 3*chunkSize + 5}
	readers := map[string]func(io.Reader) io.Reader{
		"plain":   func(r io.Reader) io.Reader { return r },
		"half":    iotest.HalfReader,
		"dataeof": iotest.DataErrReader,
		"onebyte": func(r io.Reader) io.Reader { return iotest.OneByteReader(r) },
	}
	for name, wrap := range readers {
		for _, n := range sizes {
			if name == "onebyte" && n > 2*chunkSize {
				continue // slow and adds nothing
			}
			plain := make([]byte, n)
			for i := range plain {
				plain[i] = byte(rng.Uint32())
			}
			ct, er := encryptAll(t, wrap(bytes.NewReader(plain)), testKey, testIV)
			if int64(len(ct)) != EncryptedSize(int64(n)) || er.Size() != int64(len(ct)) {
				t.Fatalf("%s/%d: ciphertext %d bytes, Size %d, EncryptedSize %d", name, n, len(ct), er.Size(), EncryptedSize(int64(n)))
			}
			sum := md5.Sum(ct)
			if !bytes.Equal(er.MD5(), sum[:]) {
				t.Fatalf("%s/%d: MD5 %x, want %x", name, n, er.MD5(), sum)
			}
			// Reference: one CryptBlocks over the padded input.
			want := referenceEncrypt(plain, testKey, testIV)
			if !bytes.Equal(ct, want) {
				t.Fatalf("%s/%d: ciphertext differs from the one-shot reference", name, n)
			}
			back, err := Decrypt(ct, testKey, testIV)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("%s/%d: Decrypt: %v", name, n, err)
			}
			dr, err := NewDecryptReader(wrap(bytes.NewReader(ct)), testKey, testIV)
			if err != nil {
				t.Fatal(err)
			}
			back, err = io.ReadAll(dr)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("%s/%d: DecryptReader: %v (len %d)", name, n, err, len(back))
			}
		}
	}
}

func referenceEncrypt(plain, key, iv []byte) []byte {
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	b, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf, buf)
	return buf
}

func TestEncryptSourceErrorAndClose(t *testing.T) {
	boom := iotest.ErrReader(io.ErrUnexpectedEOF)
	er, err := NewEncryptReader(io.MultiReader(bytes.NewReader(make([]byte, 3*chunkSize)), boom), testKey, testIV)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(er); err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadAll error = %v, want the source's error", err)
	}
	if er.MD5() != nil {
		t.Fatal("MD5 must stay nil when the stream did not end")
	}
	er.Close()
	if _, err := er.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}

func TestDecryptRejectsWrongKey(t *testing.T) {
	ct := referenceEncrypt([]byte("hello"), testKey, testIV)
	wrong := bytes.Clone(testKey)
	wrong[0] ^= 1
	if _, err := Decrypt(ct, wrong, testIV); err == nil {
		t.Fatal("Decrypt with the wrong key succeeded")
	}
	if _, err := NewEncryptReader(nil, testKey[:16], testIV); err == nil {
		t.Fatal("a 16-byte key was accepted")
	}
	if _, err := DecodeKey("AAAA"); err == nil {
		t.Fatal("a 3-byte key was accepted")
	}
}

func TestEncryptedSize(t *testing.T) {
	for plain, want := range map[int64]int64{0: 16, 1: 16, 15: 16, 16: 32, 17: 32, 1 << 30: 1<<30 + 16} {
		if got := EncryptedSize(plain); got != want {
			t.Errorf("EncryptedSize(%d) = %d, want %d", plain, got, want)
		}
	}
}

// benchSize is large enough that per-stream costs vanish.
const benchSize = 64 << 20

// zeroReader fills nothing: the bytes already in the buffer are the input,
// so the benchmark measures encryption and hashing, not input generation.
type zeroReader struct{ left int }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), z.left)
	z.left -= n
	return n, nil
}

// BenchmarkEncryptMD5 is the full EncryptReader: AES-256-CBC, PKCS#7 and the
// ciphertext MD5, read out in 4 MiB blocks as staging does.
func BenchmarkEncryptMD5(b *testing.B) {
	out := make([]byte, 4<<20)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		er, err := NewEncryptReader(&zeroReader{left: benchSize}, testKey, testIV)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := io.ReadFull(er, out); err != nil {
				break
			}
		}
		if er.MD5() == nil {
			b.Fatal("no MD5")
		}
		er.Close()
	}
}

// BenchmarkPlainCBC is the baseline: CryptBlocks over the same number of
// bytes, in place, nothing else.
func BenchmarkPlainCBC(b *testing.B) {
	buf := make([]byte, chunkSize)
	blk, _ := aes.NewCipher(testKey)
	b.SetBytes(benchSize)
	for b.Loop() {
		m := cipher.NewCBCEncrypter(blk, testIV)
		for done := 0; done < benchSize; done += len(buf) {
			m.CryptBlocks(buf, buf)
		}
	}
}
