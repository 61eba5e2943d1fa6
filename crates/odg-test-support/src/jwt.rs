//! HS256 JSON Web Tokens for tests of authenticated routes (no JWT library needed in tests).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// HMAC-SHA-256 (RFC 2104) of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|value| value ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A compact HS256 JWT with `claims` as its payload, signed with `secret`.
pub fn hs256_jwt(secret: &str, claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let signature = hmac_sha256(secret.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An RSA private key (PKCS#1 PEM) for tests only: signing session tokens in login tests.
pub const TEST_RSA_PRIVATE_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAwxa4lBrdtTGz71JejJWYUe+srLom5w6BOmSLUQBMnhiaRF0D
HsckLBAo88dXn/1VIvSLgCrVZjVWsXg72kx2nRRBrPqrbj+YcxxWr+UN/ihHTHX6
pa9fjEXnHSFi7bdTaC2KFTyUJDlyHiV4z1GSrdNeI6tdHJYaGRQWidK1L1kf3/r8
BbVgJn2bg8ZrQ3JTsKMWLRfPy75YQXyBUEzDShKMpoNlxqj42iDnyOVg7IxFEB+D
Sr4AzaDvozWCf7ZU/LVGi4xy9+MCVF4zsSYdMVuqjZUQp0H3/lx18R/zJsQ7ynNV
HCa7zirsiBiRV9fp9ejq/LOaq5mY4X79VnMZjwIDAQABAoIBAANxBmIGSCl+iCKR
+RuLEdnMLjyoYsh9+afeXFdH64XmvSick4j3oJxfPUZGsxcwdeg87hnssKickPwd
Y4/1gipyaHxhNCSoxbv3Qkab17QiyMP4CeIGmpIdFOgyVss3kCa0lmIUPNtao/sh
Wm35FANcebHJDvEh/WhlChAUT51popiV0g4HKZoZGysfdflUKJQTqhrTGlju1dnK
oE1e1MoXoHrhA7MswI2hViD1dTjp2YxiKrxNZQamgQ1DndYHzrPA3Jxz6kOPmW++
DzRI3IqUpDL/P+xluD7KQ6IoEKc8+X0GV2ew5k32CfMuzajvw5xTheGRXfjJIZ2n
a81yYqkCgYEA6BgPuU0HDihE++J0EHnqWY9aK12VK99MFOyce/tubLsGYBbSCKct
OK+/cmnxEDlj97Sfx6vrwYflut59UWk8jINlJGDQrx5C+TWg0nfaSWjS9H71/d3+
AeZKaKZdz9Q52JaJPrGRGyZJy1a2CcxdMKHM/fOk9EB4kqyXqHi2uMcCgYEA1y7k
YDXiJf9JnAKcnNHypIw5YdT2kuWsX4Z5sErb2IzWAfzDrs9cz4Mxh6x5Bc+dykAk
OrkYYONiE+fbqAw5/GguIF410fVa9d6cNWpFP8/il5ceRBHB7c8uTnfYE0qLyYUG
++U/XDujzXV7YAOJs8R7WSGfi+Re+QgZFCHboPkCgYB0k5FiS7RdghCUTDxsAjCZ
540s9wZ0UOaQJAC9rZ7bcl1TamL5Aa+PJ4eL2nbA5XK2+ry+uDXksXPMlvBvMeK9
2Um2KgLn0tVlA3DSBm1YLhS3xgWdDCIHpjp9sgKw3zJm/cXV/a6a6nJqdhVdeo7c
XIjwja6vGKr3UUWj025EBQKBgDmvj3efWlX3XyNcq+F6gwLLuKJadhOhUJl3Mm4p
U1B1SPXVbhwR6P6UXBXUDcmaA+HxWgUIE9n9exB9Cqy9QlpBD4SL3P/BN7ZMDDJh
n9jggQ1EbM+wtv1qmi5dAGcDh//pEps6tMakEmCFCyMNL8AqfyrA0cWt3iwCmL6F
6Rv5AoGBAMKlRlof4GvJvraZhhTM60SdiGPYyWK0/gAO460BUbjfPZMf7nZfzArC
PoxwLEl+tmOgqotyDDoOzk7EvAdr6kUlydh01q82U1GsIowfRON7T7UzXBZBSUY+
G9Ba9Wc9YpYRXdBuas+kwBjYq6azhXftSWC2z7T93lH8gWIZkFgh
-----END RSA PRIVATE KEY-----
";

/// The public half of [`TEST_RSA_PRIVATE_KEY`] (SubjectPublicKeyInfo PEM), for verifying.
pub const TEST_RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwxa4lBrdtTGz71JejJWY
Ue+srLom5w6BOmSLUQBMnhiaRF0DHsckLBAo88dXn/1VIvSLgCrVZjVWsXg72kx2
nRRBrPqrbj+YcxxWr+UN/ihHTHX6pa9fjEXnHSFi7bdTaC2KFTyUJDlyHiV4z1GS
rdNeI6tdHJYaGRQWidK1L1kf3/r8BbVgJn2bg8ZrQ3JTsKMWLRfPy75YQXyBUEzD
ShKMpoNlxqj42iDnyOVg7IxFEB+DSr4AzaDvozWCf7ZU/LVGi4xy9+MCVF4zsSYd
MVuqjZUQp0H3/lx18R/zJsQ7ynNVHCa7zirsiBiRV9fp9ejq/LOaq5mY4X79VnMZ
jwIDAQAB
-----END PUBLIC KEY-----
";

/// Another RSA private key (PKCS#8 PEM), for tokens that must not verify against the test key.
pub const OTHER_RSA_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDI6Rbi9jJs51tS
Gywvs3lPpEPWCl+TROyFWZ+B0wcasElk6eqPAIA+O9NzfVkyCOUCglmHOZCeel3y
pzR+om2hZNY2l22OdC3e0gefVPu1f5zarisA3/CnDmdsseOP5jocspU93BTUgppu
syDOnF5aEtEqr9h3PDmcSHkB7vsAg9qEOrCLRUPs0ECMe9NMbWNmQvTU/Qa4jiSo
uiNHDn0V1aKVcMJ5HxrituPt+MzitqzbB4Fb7xz2VVWfxm4AQj/rQ2vMmbHkmbtc
i2p8XtR2HLb9YYTysQKoze5zcoHafFnvlIqdw2XFoY9cz91X+1WpZQNxM3/MjiTR
9aH0jjD/AgMBAAECggEAR0/k3b6Be4JLOcOHVY8guhIWOf0Im59VTKfZJB2hYem8
w2L77LJC0tQtY8rURBxAHTnjSUo3eOj6O8z5pxFEVIsUNeBd9LhsJ7DpH7bseSnI
pR45CWBzbPiB4WTq3wLbEaCZtJFPm3aYFj7ioDOEkfgn4jz0Wq43zK80tGj9EtsZ
FuiODlZpAHru4ids2C8y0m2yTrVR8yxqp1e8j+9Q4IrXrWIh8ibgJjW2DjqOazOV
H4+Dabq9gZefMMVVMk8Oiaon8YscrP+xEo8Jfru7n04qhM2brZB2PZR2T5drGSVj
cXy25F8tGNpL8+D4NEQQr+XDWlkc7VOPB0HhRvELYQKBgQDu/62grPuS1VWJe+/X
s73mtEfq89oiX8DS8z9qfuUtfqxvChCvRCNh8/8oSQqKgMvf09LExQQsLIV5vOlE
iySP7CkCevCQOMkPnLT2C8CI/oMEVMzjyzvv8u1e6RLMbD8vCAkP51YdiLHVy10+
5284Sf/ja7kC97FfswBt70iBNwKBgQDXM8y6CnqmTASug0KiTjmGDbw2qmayr8KU
gyju4u1TBo6wDafKnUfDnhL2TU00Nes8zhrMSoTSaSGHq8ns6VlIGcWWr2mKs8z+
kh8WdYj8LNsztyC9pPUm+zkyXvkLueeKqTXbD6IcxIaNMZr8DqSq5fXItLfWfvk0
BWTgdgbSeQKBgAwQQ8dUc+5ZblPeOaD9pZw7hVXKsTwC8Uy0koLhnNfLCREhxO3T
1qVfF4YFCc8r6R6HJqBgAXHpXWNjsbKQA2xwUzGY2wOsmhl7o3a36SQBFMPnM+Bb
pc7ayDh+M0C2Rgotsadn2eTrvW45MZ+3Ntn0gkIMce5AameWNXNXHKXJAoGAQfFb
gH6Jir+sh5UtK/LwaYV38QBSK9rzsvJl7p2Wv2Q5APWOPuXnAahEgzi4uZD0HlPB
nmwPOzJ/1cTsQS5X72IGS+BAZQInhLJd2FH3wd405SnuXG5ZuLIumqLDibZTnweu
uwuVT19hI47ZwPbzunJw2CmYU5/g2PH2MVm5SXECgYEA1FiEzDvmAkcRsdhbmshm
V+7lU3KpfAgMeYHyeGYlVz0MWF+9Ot9dSz5T2eMI/y1m3ZQdaNALQZmK2fh1jyaA
zGbFItEMkmpLFr3J4MCqIBjGheJAjoElBCX6L7og2ZZid5hwzBABCX4mTMeYR5zc
1bvl6Mgdc0RCpD9y0zk7uBM=
-----END PRIVATE KEY-----
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_tokens_have_three_parts() {
        // RFC 4231, test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231, test case 6 (a key longer than the block).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        let token = hs256_jwt("secret", &serde_json::json!({"sub": "t"}));
        assert_eq!(token.split('.').count(), 3);
    }
}
