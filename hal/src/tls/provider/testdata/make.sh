#!/bin/sh
# Writes the provider tests' certificates, keys and signatures with the OpenSSL CLI
# (run once; the outputs are checked in). Validity: 100 years from generation.
set -e
cd "$(dirname "$0")"
ext="subjectAltName=DNS:localhost
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth"
openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Halcyon test CA" -days 36500 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" -out ca.pem
leaf() { # name, genpkey arguments...
    name=$1; shift
    openssl genpkey "$@" -out "$name.key"
    openssl req -new -key "$name.key" -subj "/CN=localhost" -out "$name.csr"
    printf '%s\n' "$ext" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 -sha256 \
        -extfile "$name.ext" -out "$name.pem"
    rm "$name.csr" "$name.ext"
}
leaf p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
leaf p384 -algorithm EC -pkeyopt ec_paramgen_curve:P-384
leaf ed25519 -algorithm ED25519
leaf rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
rm -f ca.srl
# RSA signatures over `message` (PKCS#1 v1.5 and PSS with a digest-length salt), and the
# RSAPublicKey DER the verifier takes (the SubjectPublicKeyInfo's key bits).
printf 'Halcyon provider test message' > message
openssl rsa -in rsa.key -RSAPublicKey_out -outform DER -out rsa.pub.der
for h in sha256 sha384 sha512; do
    openssl dgst -$h -sign rsa.key -out rsa-pkcs1-$h.sig message
    openssl dgst -$h -sign rsa.key -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -out rsa-pss-$h.sig message
done
