//! The typed IP, CIDR, URL and quantity libraries (k8s.io/apiserver/pkg/cel/library), through
//! compiled programs as clients write them.

use cel_rules::{EvalError, Outcome, Program, Validator};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use objects::field::Path;
use serde_json::json;

fn eval(expr: &str) -> Result<Outcome, EvalError> {
    Program::compile(expr, &[])
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .eval(&[])
}

/// Every expression evaluates to `true`.
fn all_true(exprs: &[&str]) {
    for expr in exprs {
        assert_eq!(
            eval(expr).unwrap_or_else(|e| panic!("{expr}: {e}")),
            Outcome::Bool(true),
            "{expr}"
        );
    }
}

/// Every expression fails with exactly that message.
fn all_fail(cases: &[(&str, &str)]) {
    for (expr, message) in cases {
        assert_eq!(
            eval(expr),
            Err(EvalError::Other((*message).to_owned())),
            "{expr}"
        );
    }
}

fn string(expr: &str) -> String {
    match eval(expr) {
        Ok(Outcome::String(s)) => s,
        other => panic!("{expr}: {other:?}"),
    }
}

#[test]
fn ip() {
    all_true(&[
        "isIP('127.0.0.1') && isIP('::1') && !isIP('1.2.3') && !isIP('fe80::1%eth0')",
        "!isIP('::ffff:1.2.3.4') && !isIP('01.2.3.4')",
        "ip('127.0.0.1') == ip('127.0.0.1')",
        "ip('127.0.0.1') != ip('127.0.0.2')",
        "ip('::1') == ip('0:0:0:0:0:0:0:1')",
        "ip('127.0.0.1') != ip('::1')",
        "type(ip('127.0.0.1')) == type(ip('::1'))",
        "type(ip('127.0.0.1')) != string",
        "ip('127.0.0.1').family() == 4 && ip('::1').family() == 6",
        "ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified() && !ip('127.0.0.1').isUnspecified()",
        "ip('127.0.0.1').isLoopback() && ip('127.255.0.9').isLoopback() && ip('::1').isLoopback()",
        "!ip('10.0.0.1').isLoopback() && !ip('::2').isLoopback()",
        "ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()",
        "!ip('224.0.1.1').isLinkLocalMulticast() && !ip('ff05::1').isLinkLocalMulticast()",
        "ip('169.254.1.2').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()",
        "!ip('169.255.1.2').isLinkLocalUnicast() && !ip('fec0::1').isLinkLocalUnicast()",
        // Private and ULA addresses are global unicast, as in Go.
        "ip('192.168.0.1').isGlobalUnicast() && ip('8.8.8.8').isGlobalUnicast() && ip('fd00::1').isGlobalUnicast()",
        "ip('2001:db8::1').isGlobalUnicast()",
        "!ip('255.255.255.255').isGlobalUnicast() && !ip('0.0.0.0').isGlobalUnicast()",
        "!ip('224.0.0.1').isGlobalUnicast() && !ip('ff00::1').isGlobalUnicast() && !ip('fe80::1').isGlobalUnicast()",
        "!ip('127.0.0.1').isGlobalUnicast() && !ip('::1').isGlobalUnicast()",
        "ip.isCanonical('127.0.0.1') && ip.isCanonical('2001:db8::1')",
        "!ip.isCanonical('2001:DB8::1') && !ip.isCanonical('2001:db8:0:0:0:0:0:1')",
        "!ip.isCanonical('0:0::1')",
    ]);
    assert_eq!(string("string(ip('2001:DB8:0::1'))"), "2001:db8::1");
    assert_eq!(string("string(ip('10.0.0.1'))"), "10.0.0.1");
    all_fail(&[
        (
            "ip('999.0.0.1') == ip('1.1.1.1')",
            r#"IP Address "999.0.0.1" parse error during conversion from string: ParseAddr("999.0.0.1"): IPv4 field has value >255"#,
        ),
        (
            "ip('1.2.3').family() == 4",
            r#"IP Address "1.2.3" parse error during conversion from string: ParseAddr("1.2.3"): IPv4 address too short"#,
        ),
        (
            "ip('1.2.3.4:80').family() == 4",
            r#"IP Address "1.2.3.4:80" parse error during conversion from string: ParseAddr("1.2.3.4:80"): unexpected character (at ":80")"#,
        ),
        (
            "ip('foo').family() == 4",
            r#"IP Address "foo" parse error during conversion from string: ParseAddr("foo"): unable to parse IP"#,
        ),
        (
            "ip('fe80::1%eth0').family() == 6",
            r#"IP address "fe80::1%eth0" with zone value is not allowed"#,
        ),
        (
            "ip('::ffff:1.2.3.4').family() == 6",
            r#"IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed"#,
        ),
        (
            "ip.isCanonical('1.2.3.999')",
            r#"IP Address "1.2.3.999" parse error during conversion from string: ParseAddr("1.2.3.999"): IPv4 field has value >255"#,
        ),
    ]);
    // Accessors are for IPs only.
    assert_eq!(
        eval("'1.2.3.4'.family() == 4"),
        Err(EvalError::NoSuchOverload)
    );
}

#[test]
fn cidr() {
    all_true(&[
        "isCIDR('10.0.0.0/8') && isCIDR('::/0') && isCIDR('10.1.2.3/32')",
        "!isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33') && !isCIDR('10.0.0.0/08') && !isCIDR('10.0.0.0/+8')",
        "!isCIDR('::ffff:1.2.3.4/96') && !isCIDR('fe80::%eth0/64')",
        "cidr('10.0.0.0/8').containsIP('10.1.2.3')",
        "!cidr('10.0.0.0/8').containsIP('11.0.0.0')",
        "cidr('10.0.0.0/8').containsIP(ip('10.255.255.255'))",
        "!cidr('10.0.0.0/8').containsIP(ip('::1'))",
        "cidr('2001:db8::/32').containsIP('2001:db8:1::1') && !cidr('2001:db8::/32').containsIP('2001:db9::1')",
        // Unmasked prefixes contain by their leading bits.
        "cidr('10.1.2.3/8').containsIP('10.9.9.9')",
        "cidr('::/0').containsIP('2001:db8::1') && !cidr('::/0').containsIP('1.2.3.4')",
        "cidr('0.0.0.0/0').containsIP('1.2.3.4')",
        "cidr('192.168.0.0/16').containsCIDR(cidr('192.168.10.0/24'))",
        "cidr('192.168.0.0/16').containsCIDR('192.168.10.0/24')",
        "cidr('192.168.0.0/16').containsCIDR('192.168.0.0/16')",
        "!cidr('192.168.0.0/16').containsCIDR('192.168.0.0/15')",
        "!cidr('192.168.0.0/16').containsCIDR('192.169.0.0/24')",
        "!cidr('::/0').containsCIDR('10.0.0.0/8')",
        "cidr('192.168.1.5/24').ip() == ip('192.168.1.5')",
        "cidr('192.168.1.5/24').masked() == cidr('192.168.1.0/24')",
        "cidr('192.168.1.5/24') != cidr('192.168.1.0/24')",
        "cidr('10.0.0.0/8') == cidr('10.0.0.0/8')",
        "cidr('2001:db8::1/32').masked() == cidr('2001:db8::/32')",
        "cidr('10.0.0.0/8').prefixLength() == 8 && cidr('::/0').prefixLength() == 0",
        "cidr('192.168.1.5/24').ip().family() == 4",
    ]);
    assert_eq!(string("string(cidr('2001:DB8::1/32'))"), "2001:db8::1/32");
    assert_eq!(
        string("string(cidr('192.168.1.5/24').masked())"),
        "192.168.1.0/24"
    );
    all_fail(&[
        (
            "cidr('10.0.0.0/33').prefixLength() == 33",
            r#"network address parse error during conversion from string: netip.ParsePrefix("10.0.0.0/33"): prefix length out of range"#,
        ),
        (
            "cidr('10.0.0.0').prefixLength() == 32",
            r#"network address parse error during conversion from string: netip.ParsePrefix("10.0.0.0"): no '/'"#,
        ),
        (
            "cidr('10.0.0.0/08').prefixLength() == 8",
            r#"network address parse error during conversion from string: netip.ParsePrefix("10.0.0.0/08"): bad bits after slash: "08""#,
        ),
        (
            "cidr('10.0.0.256/8').prefixLength() == 8",
            r#"network address parse error during conversion from string: netip.ParsePrefix("10.0.0.256/8"): ParseAddr("10.0.0.256"): IPv4 field has value >255"#,
        ),
        (
            "cidr('10.0.0.0/8').containsIP('10.0.0.999')",
            r#"IP Address "10.0.0.999" parse error during conversion from string: ParseAddr("10.0.0.999"): IPv4 field has value >255"#,
        ),
    ]);
}

#[test]
fn url() {
    all_true(&[
        "isURL('https://example.com/path') && isURL('/absolute/path') && isURL('*')",
        "isURL('https://example.com/x#frag') && isURL('/a b') && isURL('mailto:someone@example.com')",
        "!isURL('example.com') && !isURL('') && !isURL('example com') && !isURL(':foo')",
        "!isURL('https://exa mple.com/') && !isURL('https://example.com:8x/') && !isURL('/%zz')",
        "!isURL('https://[::1/') && !isURL('https://a\\tb/')",
        "url('https://example.com:8080/a?b=c&b=d').getQuery() == {'b': ['c', 'd']}",
        "url('https://example.com/a?x=1&y=%20z+w&flag').getQuery() == {'x': ['1'], 'y': [' z w'], 'flag': ['']}",
        "url('https://example.com/a?x=1;y=2&z=3').getQuery() == {'z': ['3']}",
        "url('https://example.com/').getQuery() == {}",
        "url('HTTPS://example.com').getScheme() == 'https'",
        "url('/path').getScheme() == '' && url('/path').getHost() == ''",
        "url('https://example.com:8080/a').getHost() == 'example.com:8080'",
        "url('https://example.com:8080/a').getHostname() == 'example.com'",
        "url('https://example.com:8080/a').getPort() == '8080'",
        "url('https://example.com/a').getPort() == ''",
        "url('https://[::1]:80/a').getHost() == '[::1]:80'",
        "url('https://[::1]:80/a').getHostname() == '::1'",
        "url('https://[::1]/a').getHostname() == '::1' && url('https://[::1]/a').getPort() == ''",
        "url('https://user:pw@example.com/').getHost() == 'example.com'",
        "url('https://example.com/a%20b/c').getEscapedPath() == '/a%20b/c'",
        "url('https://example.com/a b').getEscapedPath() == '/a%20b'",
        "url('https://example.com/%7Efoo').getEscapedPath() == '/%7Efoo'",
        "url('https://example.com/path#frag').getEscapedPath() == '/path'",
        "url('https://example.com').getEscapedPath() == ''",
        "url('https://example.com/a?q#f').getQuery() == {'q': ['']}",
        "url('https://example.com/a') == url('https://example.com/a')",
        "url('https://example.com/a') != url('https://example.com/b')",
    ]);
    all_fail(&[
        (
            "url('example.com').getHost() == ''",
            r#"URL parse error during conversion from string: parse "example.com": invalid URI for request"#,
        ),
        (
            "url('https://example.com:80a/').getHost() == ''",
            r#"URL parse error during conversion from string: parse "https://example.com:80a/": invalid port ":80a" after host"#,
        ),
        (
            "url('/a%zzb').getHost() == ''",
            r#"URL parse error during conversion from string: parse "/a%zzb": invalid URL escape "%zz""#,
        ),
        (
            "url('https://exa mple.com/').getHost() == ''",
            r#"URL parse error during conversion from string: parse "https://exa mple.com/": invalid character " " in host name"#,
        ),
        (
            "url(':x').getHost() == ''",
            r#"URL parse error during conversion from string: parse ":x": missing protocol scheme"#,
        ),
    ]);
}

#[test]
fn quantity() {
    all_true(&[
        "isQuantity('100m') && isQuantity('1.5Gi') && isQuantity('1e3') && isQuantity('-1') && isQuantity('+.5')",
        "!isQuantity('1x') && !isQuantity('') && !isQuantity('1ki') && !isQuantity('1 ') && !isQuantity('1e')",
        "quantity('1') == quantity('1000m')",
        "quantity('1Ki') == quantity('1024')",
        "quantity('1k') != quantity('1Ki')",
        "quantity('1.5Gi') == quantity('1536Mi')",
        "quantity('0') == quantity('-0') && quantity('0') == quantity('0Gi')",
        "quantity('1e3') == quantity('1k')",
        "quantity('1') != quantity('1.000000001')",
        "quantity('5').sign() == 1 && quantity('-5m').sign() == -1 && quantity('0').sign() == 0",
        "quantity('2k').isInteger() && quantity('1Gi').isInteger() && quantity('-3').isInteger()",
        "!quantity('1.5').isInteger() && !quantity('500m').isInteger()",
        // Upstream answers from its representation: a negative scale is never an integer.
        "!quantity('1000m').isInteger()",
        "quantity('2k').asInteger() == 2000 && quantity('1Mi').asInteger() == 1048576 && quantity('-7').asInteger() == -7",
        "quantity('1.5').asApproximateFloat() == 1.5 && quantity('250m').asApproximateFloat() == 0.25",
        "quantity('1Ki').asApproximateFloat() == 1024.0",
        "quantity('1').add(quantity('500m')) == quantity('1.5')",
        "quantity('1').add(2) == quantity('3')",
        "quantity('1Gi').add(quantity('1Gi')) == quantity('2Gi')",
        "quantity('0.1').add(quantity('0.2')) == quantity('0.3')",
        "quantity('1').sub(quantity('500m')) == quantity('500m')",
        "quantity('1').sub(3) == quantity('-2')",
        "quantity('1').sub(3).sign() == -1",
        "quantity('9223372036854775807').add(1).isGreaterThan(quantity('9223372036854775807'))",
        "!quantity('9223372036854775807').add(1).isInteger()",
        "quantity('200M').isGreaterThan(quantity('100Mi')) && !quantity('100Mi').isGreaterThan(quantity('200M'))",
        "quantity('50m').isLessThan(quantity('0.1')) && !quantity('1').isLessThan(quantity('1000m'))",
        "quantity('1').compareTo(quantity('2')) == -1 && quantity('2').compareTo(quantity('1')) == 1",
        "quantity('1').compareTo(quantity('1000m')) == 0",
        "quantity('1e100').isGreaterThan(quantity('1e99'))",
        "quantity('-1e100').isLessThan(quantity('1'))",
        "quantity('0.0000000001').isGreaterThan(quantity('0'))",
        "quantity('0.0000000001') == quantity('1n')",
    ]);
    all_fail(&[
        (
            "quantity('1.5').asInteger() == 1",
            "cannot convert value to integer",
        ),
        (
            "quantity('100Ei').asInteger() == 1",
            "cannot convert value to integer",
        ),
        (
            "quantity('1e19').asInteger() == 1",
            "cannot convert value to integer",
        ),
        (
            "quantity('1x').sign() == 1",
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "quantity('1ki').sign() == 1",
            "unable to parse quantity's suffix",
        ),
    ]);
    // Quantities take quantities, and ints where upstream declares them.
    assert_eq!(
        eval("quantity('1').isLessThan(2)"),
        Err(EvalError::NoSuchOverload)
    );
    assert_eq!(
        eval("quantity('1').add('1')"),
        Err(EvalError::NoSuchOverload)
    );
}

#[test]
fn on_object_fields() {
    let obj = json!({"spec": {
        "cidr": "10.0.0.0/16",
        "address": "10.0.3.4",
        "endpoint": "https://api.example.com:6443/healthz",
        "memory": "512Mi",
        "limit": "1Gi",
    }});
    let p = Program::compile(
        "cidr(object.spec.cidr).containsIP(object.spec.address) && url(object.spec.endpoint).getPort() == '6443' && quantity(object.spec.memory).isLessThan(quantity(object.spec.limit))",
        &["object"],
    )
    .unwrap();
    assert_eq!(p.eval(&[("object", &obj)]), Ok(Outcome::Bool(true)));
    let p = Program::compile("ip(object.spec.address).isLoopback()", &["object"]).unwrap();
    assert_eq!(p.eval(&[("object", &obj)]), Ok(Outcome::Bool(false)));
    // A namespace is not a variable: `ip.isCanonical` compiles without one.
    assert!(Program::compile("ip.isCanonical(object.spec.address)", &["object"]).is_ok());
    assert!(Program::compile("strings.quote('a') == '\"a\"'", &[]).is_ok());
    // But an undeclared function in a namespace is still an error.
    assert!(Program::compile("ip.frobnicate('1.2.3.4')", &[]).is_err());
}

#[test]
fn in_crd_rules_within_cost_limits() {
    let schema: JSONSchemaProps = serde_json::from_value(json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "properties": {
                "cidrs": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 64}},
                "request": {"type": "string", "maxLength": 32},
                "limit": {"type": "string", "maxLength": 32},
            },
            "x-kubernetes-validations": [
                {"rule": "self.cidrs.all(c, isCIDR(c) && cidr(c).prefixLength() >= 8 && cidr(c).masked() == cidr(c))", "message": "bad cidr"},
                {"rule": "quantity(self.request).compareTo(quantity(self.limit)) <= 0", "messageExpression": "'request ' + self.request + ' exceeds limit ' + self.limit"},
            ],
        }},
    }))
    .unwrap();
    let v =
        Validator::new(&schema, &Path::new("openAPIV3Schema")).unwrap_or_else(|e| panic!("{e:?}"));
    let ok =
        json!({"spec": {"cidrs": ["10.0.0.0/8", "fd00::/64"], "request": "500m", "limit": "1"}});
    assert!(v.validate(&ok, None).is_empty());
    let bad = json!({"spec": {"cidrs": ["10.0.0.1/8"], "request": "2", "limit": "1500m"}});
    let errs: Vec<String> = v
        .validate(&bad, None)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "spec: Invalid value: \"object\": bad cidr",
            "spec: Invalid value: \"object\": request 2 exceeds limit 1500m",
        ]
    );
    let invalid = json!({"spec": {"cidrs": [], "request": "lots", "limit": "1"}});
    let errs: Vec<String> = v
        .validate(&invalid, None)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "spec: Invalid value: \"object\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' evaluating rule: quantity(self.request).compareTo(quantity(self.limit)) <= 0"
        ]
    );
}
