#!/bin/sh
# make_certs.sh DIR - a throwaway CA and certificates for the TLS tests,
# made at test time with the openssl command (nothing secret is committed):
#   ca.pem/ca.key              "preforkd test CA", 30 days
#   a.pem/a.key, b.pem/b.key   leaves for a.test and b.test, signed by the CA
#   a2.pem/a2.key              a second certificate for a.test (a renewal)
#   soon.pem/soon.key          a leaf for soon.test that expires in 3 days
#   a-full.pem                 a.pem followed by ca.pem (a complete chain)
#   bad-chain.pem              a.pem followed by another CA that did not sign it
# Keys are EC P-256 and mode 0600.
set -eu
dir=$1
cd "$dir"
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # name host days
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" \
        -days "$3" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
ca ca "preforkd test CA"
ca other-ca "another test CA"
leaf a a.test 30
leaf a2 a.test 30
leaf b b.test 30
leaf soon soon.test 3
cat a.pem ca.pem > a-full.pem
cat a.pem other-ca.pem > bad-chain.pem
chmod 0644 ./*.pem
