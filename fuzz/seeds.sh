#!/usr/bin/env bash
# Writes small seed inputs for every target to fuzz/seeds/<target>/ (not committed: made
# from generated data and from files that installed packages ship).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf seeds && mkdir -p seeds/{email,mbox,document,party_import,range,catalogue,query,zip}
py=python3
# Emails: the Python standard library's own test messages, where installed.
emails=$($py -c 'import test,os;print(os.path.join(os.path.dirname(test.__file__),"test_email","data"))' 2>/dev/null || true)
if [ -d "$emails" ]; then
  ls "$emails"/msg_*.txt | head -24 | while read -r f; do cp "$f" seeds/email/; done
else
  echo "seeds: Python's test_email data not found; generated emails only" >&2
fi
printf 'From: a@example.com\r\nTo: b@example.de\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <x@y>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; charset=latin1\r\n\r\nHallo\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="r.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n' > seeds/email/generated.eml
printf 'From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\nEins\n>From quoted\n\nFrom b@x Mon Jan  1 00:00:00 2024\nSubject: 2\n\nZwei\n' > seeds/mbox/two.mbox
printf '\x05{\\rtf1\\ansi Hallo \\'"'"'fc \\u8364? Welt}' > seeds/document/rtf
printf '\x06<html><body><p>Rechnung &amp; Gutschrift</p><script>x</script></body></html>' > seeds/document/html
printf '\x07<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>R-1</ID><IssueDate>2024-01-01</IssueDate></Invoice>' > seeds/document/ubl
printf '\x08Text mit Umlauten: M\xc3\xbcller' > seeds/document/text
$py - <<'PY'
import zipfile, io
def z(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as f:
        for n, d in entries: f.writestr(n, d)
    return b.getvalue()
docx = z([("[Content_Types].xml", "<Types/>"), ("word/document.xml", '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Vertrag</w:t></w:r></w:p></w:body></w:document>')])
open("seeds/document/docx", "wb").write(b"\x01" + docx)
odt = z([("mimetype", "application/vnd.oasis.opendocument.text"), ("content.xml", '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>Angebot</text:p></office:text></office:body></office:document-content>')])
open("seeds/document/odt", "wb").write(b"\x04" + odt)
pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj 4 0 obj<</Length 35>>stream\nBT /F1 12 Tf 20 100 Td (Rechnung) Tj ET\nendstream endobj 5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
open("seeds/document/pdf", "wb").write(b"\x00" + pdf)
open("seeds/zip/small.zip", "wb").write(z([("a/mail.eml", "From: a@b\r\n\r\nx"), ("../escape.txt", "x"), ("doc.txt", "Hallo")]))
PY
printf 'kind,name,role,customer_number,vat_id,email\norganisation,M\xc3\xbcller GmbH,customer,K-1,DE123456789,info@mueller.de\nperson,Erika,supplier,,,erika@example.com\n' > seeds/party_import/csv
printf '[{"kind":"organisation","name":"A","roles":[{"role":"customer","number":"K-2"}]}]' > seeds/party_import/json
for r in 'bytes=0-9' 'bytes=-5' 'bytes=5-' 'bytes=0-1,5-6' 'bytes=9999-'; do printf '%s' "$r" > "seeds/range/$(echo "$r" | tr -c 'a-z0-9' _)"; done
cp ../schemas/retention-de.toml seeds/catalogue/
cp ../schemas/classification.toml seeds/catalogue/
i=0; for q in 'Rechnung AND NOT Gutschrift' '"Lieferung Müller"' 'date:[2024-01-01 TO 2024-12-31]' 'liefer*' 'title:Vertrag' 'from:a@b.de OR to:c@d.de' '+class:invoice -hold:x' 'year:2024^2'; do printf '%s' "$q" > seeds/query/q$i; i=$((i+1)); done
mkdir -p seeds/request
printf '\000--akte\r\nContent-Disposition: form-data; name="metadata"\r\nContent-Type: application/json\r\n\r\n{"class":"invoice","title":"Rechnung","document_date":"2025-01-31","parties":[{"party":"01900000-0000-7000-8000-000000000000","role":"sender"}]}\r\n--akte\r\nContent-Disposition: form-data; name="file"; filename="r.pdf"\r\nContent-Type: application/pdf\r\n\r\n%%PDF-1.4\r\n--akte--\r\n' > seeds/request/multipart
printf '\001{"kind":"organisation","name":"M\303\274ller GmbH","emails":["info@mueller.de"],"vat_id":"DE123456789","roles":[{"role":"customer","number":"K-1","since":"2020-01-01"}],"addresses":[{"city":"K\303\266ln"}]}' > seeds/request/party
printf '\003{"title":"Neu","retain_until":"2040-12-31","base_rev":2.0}' > seeds/request/amend
printf '\004{"name":"Pr\303\274fung","reason":"BP","scope":{"ids":["01900000-0000-7000-8000-000000000000"],"type":"records"}}' > seeds/request/hold
printf '\005{"add":[{"party":"01900000-0000-7000-8000-000000000000","role":"copy"}],"remove":[{"party":"x","role":"*"}]}' > seeds/request/links
printf '\006{"role":"clerk","name":"c","parties":[],"person":"carla"}' > seeds/request/token
printf '\007["complaint","Reklamation","01900000-0000-7000-8000-000000000000"]' > seeds/request/case-as-array
echo "seeds written: $(find seeds -type f | wc -l) files"
