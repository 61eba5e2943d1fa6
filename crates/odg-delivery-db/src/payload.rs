//! Payload typing and data keys. The original parses `data` into the first payload class (in
//! declaration order) that the JSON fits strictly (dacite with `strict=True`: no unknown keys,
//! required fields present, types checked), else keeps a plain object. The class decides the
//! data key, and so the entry's id: one unexpected field turns a typed payload into a plain
//! object and changes its id. This file mirrors those classes as shape descriptions.
//!
//! dacite's rules kept here: an `Optional` field may be missing even without a default; an `int`
//! field accepts booleans (Python's `bool` is an `int`) but a `float` field no integers; nested
//! classes are strict too; enum fields accept only their values.

use serde_json::{Map, Value};

use crate::model::InvalidEntry;

/// A field type, as far as fitting is concerned.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    Int,
    Float,
    /// Any JSON object (`dict`, `dict[str, Any]`).
    Dict,
    /// An object whose values are strings or null (`OperatingSystemId`, all optional strings).
    StrOrNullMap,
    /// An object of strings (`dict[str, str]`).
    StrMap,
    /// A string `dateutil.parser.isoparse` reads.
    DateTime,
    /// A string `datetime.fromisoformat(..).date()` reads.
    Date,
    Enum(&'static [&'static str]),
    Opt(&'static Ty),
    List(&'static Ty),
    Class(&'static Class),
    Union(&'static [Ty]),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    ty: Ty,
    /// False for fields with a default and for `Optional` ones.
    required: bool,
}

#[derive(Debug)]
struct Class {
    name: &'static str,
    fields: &'static [Field],
    /// Extra keys allowed: only for the classes whose full field list we do not know (see
    /// `IP_FINDING`), never for the ones mirrored exactly.
    open: bool,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

const OPT_STR: Ty = Ty::Opt(&Ty::Str);
const OPT_INT: Ty = Ty::Opt(&Ty::Int);

static LICENSE: Class = Class {
    name: "License",
    fields: &[req("name", Ty::Str)],
    open: false,
};

macro_rules! bdba_mixin {
    () => {
        [
            req("package_name", Ty::Str),
            opt("package_version", OPT_STR),
            req("base_url", Ty::Str),
            req("report_url", Ty::Str),
            req("product_id", Ty::Int),
            req("group_id", Ty::Int),
        ]
    };
}

static FILESYSTEM_PATH_ENTRY: Class = Class {
    name: "FilesystemPathEntry",
    fields: &[req("path", Ty::Str), req("type", Ty::Str)],
    open: false,
};

static FILESYSTEM_PATH: Class = Class {
    name: "FilesystemPath",
    fields: &[
        req("path", Ty::List(&Ty::Class(&FILESYSTEM_PATH_ENTRY))),
        req("digest", Ty::Str),
    ],
    open: false,
};

static STRUCTURE_INFO: Class = Class {
    name: "StructureInfo",
    fields: &{
        let mixin = bdba_mixin!();
        [
            mixin[0],
            mixin[1],
            mixin[2],
            mixin[3],
            mixin[4],
            mixin[5],
            req("licenses", Ty::List(&Ty::Class(&LICENSE))),
            req("filesystem_paths", Ty::List(&Ty::Class(&FILESYSTEM_PATH))),
        ]
    },
    open: false,
};

static LICENSE_FINDING: Class = Class {
    name: "LicenseFinding",
    fields: &{
        let mixin = bdba_mixin!();
        [
            req("severity", Ty::Str),
            mixin[0],
            mixin[1],
            mixin[2],
            mixin[3],
            mixin[4],
            mixin[5],
            req("license", Ty::Class(&LICENSE)),
        ]
    },
    open: false,
};

static VULNERABILITY_FINDING: Class = Class {
    name: "VulnerabilityFinding",
    fields: &{
        let mixin = bdba_mixin!();
        [
            req("severity", Ty::Str),
            mixin[0],
            mixin[1],
            mixin[2],
            mixin[3],
            mixin[4],
            mixin[5],
            req("cve", Ty::Str),
            req("cvss_v3_score", Ty::Float),
            // `CVSSV3 | dict`: any object fits the second.
            req("cvss", Ty::Dict),
            opt("summary", OPT_STR),
        ]
    },
    open: false,
};

static MALWARE_FINDING_DETAILS: Class = Class {
    name: "MalwareFindingDetails",
    fields: &[
        req("filename", Ty::Str),
        req("content_digest", Ty::Str),
        req("malware", Ty::Str),
        opt("context", OPT_STR),
    ],
    open: false,
};

static CLAMAV_MALWARE_FINDING: Class = Class {
    name: "ClamAVMalwareFinding",
    fields: &[
        req("severity", Ty::Str),
        req("finding", Ty::Class(&MALWARE_FINDING_DETAILS)),
        req("octets_count", Ty::Int),
        req("scan_duration_seconds", Ty::Float),
        opt("clamav_version", OPT_STR),
        opt("signature_version", OPT_INT),
        opt("freshclam_timestamp", Ty::Opt(&Ty::DateTime)),
    ],
    open: false,
};

const SAST_STATUS: Ty = Ty::Enum(&["no-linter"]);
const SAST_SUB_TYPE: Ty = Ty::Enum(&["local-linting", "central-linting"]);

static SAST_FINDING: Class = Class {
    name: "SastFinding",
    fields: &[
        req("severity", Ty::Str),
        req("sast_status", SAST_STATUS),
        req("sub_type", SAST_SUB_TYPE),
    ],
    open: false,
};

static DIKI_CHECK: Class = Class {
    name: "DikiCheck",
    fields: &[
        req("message", Ty::Str),
        req("targets", Ty::Union(&[Ty::List(&Ty::Dict), Ty::Dict])),
    ],
    open: false,
};

static DIKI_FINDING: Class = Class {
    name: "DikiFinding",
    fields: &[
        req("severity", Ty::Str),
        req("provider_id", Ty::Str),
        req("ruleset_id", Ty::Str),
        opt("ruleset_name", OPT_STR),
        req("ruleset_version", Ty::Str),
        req("rule_id", Ty::Str),
        opt("rule_name", OPT_STR),
        req("checks", Ty::List(&Ty::Class(&DIKI_CHECK))),
    ],
    open: false,
};

static OS_ID: Class = Class {
    name: "OsID",
    fields: &[req("os_info", Ty::StrOrNullMap)],
    open: false,
};

const OS_STATUS: Ty = Ty::Enum(&[
    "noBranchInfo",
    "noReleaseInfo",
    "unableToCompareVersion",
    "branchReachedEol",
    "updateAvailableForBranch",
    "emptyOsId",
    "atMostOnePatchlevelBehind",
    "moreThanOnePatchlevelBehind",
    "upToDate",
    "distroless",
]);

static OS_ID_FINDING: Class = Class {
    name: "OsIdFinding",
    fields: &[
        req("severity", Ty::Str),
        req("osid", Ty::StrOrNullMap),
        req("os_status", OS_STATUS),
        opt("greatest_version", OPT_STR),
        opt("eol_date", Ty::Opt(&Ty::DateTime)),
    ],
    open: false,
};

static RESCORING_VULNERABILITY_FINDING: Class = Class {
    name: "RescoringVulnerabilityFinding",
    fields: &[req("package_name", Ty::Str), req("cve", Ty::Str)],
    open: false,
};

static RESCORING_LICENSE_FINDING: Class = Class {
    name: "RescoringLicenseFinding",
    fields: &[
        req("package_name", Ty::Str),
        req("license", Ty::Class(&LICENSE)),
    ],
    open: false,
};

static RESCORE_SAST_FINDING: Class = Class {
    name: "RescoreSastFinding",
    fields: &[
        req("sast_status", SAST_STATUS),
        req("sub_type", SAST_SUB_TYPE),
    ],
    open: false,
};

const PRIMITIVE: Ty = Ty::Enum(&["block-cipher", "hash", "pke", "signature"]);
const CERTIFICATE_KIND: Ty = Ty::Enum(&["root-ca", "intermediate-ca", "end-user"]);

static ALGORITHM_PROPERTIES: Class = Class {
    name: "AlgorithmProperties",
    fields: &[
        req("name", Ty::Str),
        opt("primitive", Ty::Opt(&PRIMITIVE)),
        opt("parameter_set_identifier", OPT_STR),
        opt("curve", OPT_STR),
        opt("padding", OPT_STR),
    ],
    open: false,
};

static CERTIFICATE_PROPERTIES: Class = Class {
    name: "CertificateProperties",
    fields: &[
        req("kind", CERTIFICATE_KIND),
        opt("validity_years", OPT_INT),
        opt("signature_algorithm_ref", OPT_STR),
        opt("subject_public_key_ref", OPT_STR),
    ],
    open: false,
};

static LIBRARY_PROPERTIES: Class = Class {
    name: "LibraryProperties",
    fields: &[req("name", Ty::Str), opt("version", OPT_STR)],
    open: false,
};

static RELATED_CRYPTO_MATERIAL_PROPERTIES: Class = Class {
    name: "RelatedCryptoMaterialProperties",
    fields: &[
        opt("type", OPT_STR),
        opt("algorithm_ref", OPT_STR),
        opt("curve", OPT_STR),
        opt("size", OPT_INT),
    ],
    open: false,
};

static PROTOCOL_PROPERTIES: Class = Class {
    name: "ProtocolProperties",
    fields: &[opt("type", OPT_STR), opt("version", OPT_STR)],
    open: false,
};

/// In declaration order: the first that fits wins.
const CRYPTO_PROPERTIES: &[&Class] = &[
    &ALGORITHM_PROPERTIES,
    &CERTIFICATE_PROPERTIES,
    &LIBRARY_PROPERTIES,
    &RELATED_CRYPTO_MATERIAL_PROPERTIES,
    &PROTOCOL_PROPERTIES,
];

static CRYPTO_ASSET: Class = Class {
    name: "CryptoAsset",
    fields: &[
        req("names", Ty::List(&Ty::Str)),
        req("locations", Ty::List(&Ty::Str)),
        req(
            "asset_type",
            Ty::Enum(&[
                "algorithm",
                "certificate",
                "library",
                "protocol",
                "related-crypto-material",
            ]),
        ),
        req(
            "properties",
            Ty::Union(&[
                Ty::Class(&ALGORITHM_PROPERTIES),
                Ty::Class(&CERTIFICATE_PROPERTIES),
                Ty::Class(&LIBRARY_PROPERTIES),
                Ty::Class(&RELATED_CRYPTO_MATERIAL_PROPERTIES),
                Ty::Class(&PROTOCOL_PROPERTIES),
            ]),
        ),
    ],
    open: false,
};

static CRYPTO_FINDING: Class = Class {
    name: "CryptoFinding",
    fields: &[
        req("severity", Ty::Str),
        req("standard", Ty::Str),
        req("asset", Ty::Class(&CRYPTO_ASSET)),
        opt("summary", OPT_STR),
    ],
    open: false,
};

static RESCORING_CRYPTO_FINDING: Class = Class {
    name: "RescoringCryptoFinding",
    fields: &[
        req("standard", Ty::Str),
        req("asset", Ty::Class(&CRYPTO_ASSET)),
    ],
    open: false,
};

static RESCORE_OS_ID_FINDING: Class = Class {
    name: "RescoreOsIdFinding",
    fields: &[req("osid", Ty::StrOrNullMap)],
    open: false,
};

static RESCORING_DIKI_FINDING: Class = Class {
    name: "RescoringDikiFinding",
    fields: &[
        req("provider_id", Ty::Str),
        req("ruleset_id", Ty::Str),
        req("rule_id", Ty::Str),
    ],
    open: false,
};

static RESCORING_FALCO_FINDING: Class = Class {
    name: "RescoringFalcoFinding",
    fields: &[req("group_hash", Ty::Str)],
    open: false,
};

static RESCORING_KYVERNO_FINDING: Class = Class {
    name: "RescoringKyvernoFinding",
    fields: &[req("group_hash", Ty::Str)],
    open: false,
};

static RESCORE_GITHUB_SECRET_FINDING: Class = Class {
    name: "RescoreGitHubSecretFinding",
    fields: &[req("html_url", Ty::Str), req("resolution", Ty::Str)],
    open: false,
};

static RESCORING_IP_FINDING: Class = Class {
    name: "RescoringIPFinding",
    fields: &[
        req("package_name", Ty::Str),
        opt("license", Ty::Opt(&Ty::Class(&LICENSE))),
        req("labels", Ty::List(&Ty::Str)),
    ],
    open: false,
};

/// `CustomRescoring.finding`'s union, in the original's declaration order.
const RESCORING_FINDINGS: &[&Class] = &[
    &RESCORING_VULNERABILITY_FINDING,
    &RESCORING_LICENSE_FINDING,
    &MALWARE_FINDING_DETAILS,
    &RESCORE_SAST_FINDING,
    &RESCORING_CRYPTO_FINDING,
    &RESCORING_DIKI_FINDING,
    &RESCORE_OS_ID_FINDING,
    &RESCORING_FALCO_FINDING,
    &RESCORING_KYVERNO_FINDING,
    &RESCORE_GITHUB_SECRET_FINDING,
    &RESCORING_IP_FINDING,
];

static BDBA_USER: Class = Class {
    name: "BDBAUser",
    fields: &[
        req("username", Ty::Str),
        opt("type", Ty::Str),
        req("email", Ty::Str),
        req("firstname", Ty::Str),
        req("lastname", Ty::Str),
    ],
    open: false,
};

static GITHUB_USER: Class = Class {
    name: "GitHubUser",
    fields: &[
        req("username", Ty::Str),
        opt("type", Ty::Str),
        req("github_hostname", Ty::Str),
    ],
    open: false,
};

static USER: Class = Class {
    name: "User",
    fields: &[req("username", Ty::Str), opt("type", Ty::Str)],
    open: false,
};

/// (class, the default of its `type` field)
const USERS: &[(&Class, &str)] = &[
    (&BDBA_USER, "bdba-user"),
    (&GITHUB_USER, "github-user"),
    (&USER, "user"),
];

static CUSTOM_RESCORING: Class = Class {
    name: "CustomRescoring",
    fields: &[
        req(
            "finding",
            Ty::Union(&[
                Ty::Class(&RESCORING_VULNERABILITY_FINDING),
                Ty::Class(&RESCORING_LICENSE_FINDING),
                Ty::Class(&MALWARE_FINDING_DETAILS),
                Ty::Class(&RESCORE_SAST_FINDING),
                Ty::Class(&RESCORING_CRYPTO_FINDING),
                Ty::Class(&RESCORE_OS_ID_FINDING),
            ]),
        ),
        req("referenced_type", Ty::Str),
        req("severity", Ty::Str),
        req(
            "user",
            Ty::Union(&[
                Ty::Class(&BDBA_USER),
                Ty::Class(&GITHUB_USER),
                Ty::Class(&USER),
            ]),
        ),
        opt("matching_rules", Ty::List(&Ty::Str)),
        opt("comment", OPT_STR),
        opt("allowed_processing_time", OPT_STR),
        opt("due_date", Ty::Opt(&Ty::Date)),
    ],
    open: false,
};

static COMPLIANCE_SNAPSHOT_STATE: Class = Class {
    name: "ComplianceSnapshotState",
    fields: &[
        req("timestamp", Ty::DateTime),
        opt("status", Ty::Opt(&Ty::Union(&[Ty::Str, Ty::Int]))),
        opt("service", OPT_STR),
    ],
    open: false,
};

static COMPLIANCE_SNAPSHOT: Class = Class {
    name: "ComplianceSnapshot",
    fields: &[
        req("due_date", Ty::Date),
        req("state", Ty::List(&Ty::Class(&COMPLIANCE_SNAPSHOT_STATE))),
    ],
    open: false,
};

const FALCO_PRIORITY: Ty = Ty::Enum(&[
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
]);

static FALCO_EVENT: Class = Class {
    name: "FalcoEvent",
    fields: &[
        req("message", Ty::Str),
        req("cluster", Ty::Str),
        req("hostname", Ty::Str),
        req("time", Ty::DateTime),
        req("rule", Ty::Str),
        req("priority", FALCO_PRIORITY),
        req("output", Ty::Dict),
    ],
    open: false,
};

static FALCO_NODE: Class = Class {
    name: "Node",
    fields: &[req("name", Ty::Str), req("count", Ty::Int)],
    open: false,
};

static FALCO_CLUSTER: Class = Class {
    name: "Cluster",
    fields: &[
        req("name", Ty::Str),
        req("nodes", Ty::List(&Ty::Class(&FALCO_NODE))),
    ],
    open: false,
};

static FALCO_INTERACTIVE_EVENT_GROUP: Class = Class {
    name: "FalcoInteractiveEventGroup",
    fields: &[
        req("count", Ty::Int),
        req("cluster", Ty::Str),
        req("hostname", Ty::Str),
        req("project", Ty::Str),
        req("landscape", Ty::Str),
        req("group_hash", Ty::Str),
        req("first_event", Ty::DateTime),
        req("last_event", Ty::DateTime),
        req("events", Ty::List(&Ty::Class(&FALCO_EVENT))),
    ],
    open: false,
};

static FALCO_EVENT_GROUP: Class = Class {
    name: "FalcoEventGroup",
    fields: &[
        req("message", Ty::Str),
        req("clusters", Ty::List(&Ty::Class(&FALCO_CLUSTER))),
        req("landscape", Ty::Str),
        req("project", Ty::Str),
        req("rule", Ty::Str),
        req("priority", FALCO_PRIORITY),
        req("first_event", Ty::DateTime),
        req("last_event", Ty::DateTime),
        req("count", Ty::Int),
        req("group_hash", Ty::Str),
        req("fields", Ty::StrMap),
        req("events", Ty::List(&Ty::Class(&FALCO_EVENT))),
        req("exception", Ty::Str),
    ],
    open: false,
};

static FALCO_FINDING: Class = Class {
    name: "FalcoFinding",
    fields: &[
        req("severity", Ty::Str),
        req(
            "subtype",
            Ty::Enum(&["event-group", "interactive-event-group"]),
        ),
        req(
            "finding",
            Ty::Union(&[
                Ty::Class(&FALCO_INTERACTIVE_EVENT_GROUP),
                Ty::Class(&FALCO_EVENT_GROUP),
            ]),
        ),
    ],
    open: false,
};

static INVENTORY_FINDING: Class = Class {
    name: "InventoryFinding",
    fields: &[
        req("severity", Ty::Str),
        req("provider_name", Ty::Str),
        req("resource_kind", Ty::Str),
        req("resource_name", Ty::Str),
        req("summary", Ty::Str),
        req("attributes", Ty::Dict),
    ],
    open: false,
};

static POLICY_VIOLATION: Class = Class {
    name: "PolicyViolation",
    fields: &[req("name", Ty::Str)],
    open: true,
};

/// Black Duck IP findings, GHAS alerts and Kyverno reports: we know the fields of their data
/// keys but not their full field lists, so these classes accept extra keys (see ARCHITECTURE.md).
static IP_FINDING: Class = Class {
    name: "IPFinding",
    fields: &[
        req("severity", Ty::Str),
        req("package_name", Ty::Str),
        opt("package_version", OPT_STR),
        req("license", Ty::Class(&LICENSE)),
        req("labels", Ty::List(&Ty::Str)),
        req("policy_violation", Ty::Class(&POLICY_VIOLATION)),
    ],
    open: true,
};

static GHAS_FINDING: Class = Class {
    name: "GitHubSecretFinding",
    fields: &[req("severity", Ty::Str), req("html_url", Ty::Str)],
    open: true,
};

static KYVERNO_FINDING: Class = Class {
    name: "KyvernoFinding",
    fields: &[req("severity", Ty::Str), req("group_hash", Ty::Str)],
    open: true,
};

/// The payload classes in the original's declaration order.
static PAYLOAD_CLASSES: &[&Class] = &[
    &STRUCTURE_INFO,
    &LICENSE_FINDING,
    &VULNERABILITY_FINDING,
    &CLAMAV_MALWARE_FINDING,
    &SAST_FINDING,
    &DIKI_FINDING,
    &OS_ID,
    &OS_ID_FINDING,
    &CUSTOM_RESCORING,
    &COMPLIANCE_SNAPSHOT,
    &CRYPTO_ASSET,
    &CRYPTO_FINDING,
    &FALCO_FINDING,
    &INVENTORY_FINDING,
    &IP_FINDING,
    &GHAS_FINDING,
    &KYVERNO_FINDING,
];

fn fits(value: &Value, ty: &Ty) -> bool {
    match ty {
        Ty::Str => value.is_string(),
        Ty::Int => value.is_i64() || value.is_u64() || value.is_boolean(),
        Ty::Float => value.is_f64(),
        Ty::Dict => value.is_object(),
        Ty::StrOrNullMap => value.as_object().is_some_and(|object| {
            object
                .values()
                .all(|value| value.is_string() || value.is_null())
        }),
        Ty::StrMap => value
            .as_object()
            .is_some_and(|object| object.values().all(Value::is_string)),
        Ty::DateTime => value
            .as_str()
            .is_some_and(|text| crate::time::normalise_timestamp(text).is_some()),
        Ty::Date => value
            .as_str()
            .is_some_and(|text| crate::model::iso_date(text).is_some()),
        Ty::Enum(values) => value.as_str().is_some_and(|text| values.contains(&text)),
        Ty::Opt(inner) => value.is_null() || fits(value, inner),
        Ty::List(inner) => value
            .as_array()
            .is_some_and(|items| items.iter().all(|item| fits(item, inner))),
        Ty::Class(class) => fits_class(value, class),
        Ty::Union(types) => types.iter().any(|ty| fits(value, ty)),
    }
}

fn fits_class(value: &Value, class: &Class) -> bool {
    let Some(object) = value.as_object() else {
        return false;
    };
    if !class.open
        && object
            .keys()
            .any(|key| !class.fields.iter().any(|field| field.name == key))
    {
        return false;
    }
    class
        .fields
        .iter()
        .all(|field| match object.get(field.name) {
            None => !field.required,
            Some(value) => fits(value, &field.ty),
        })
}

/// What the payload was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The payload class (`VulnerabilityFinding`, ...); `None` for a plain object.
    pub class: Option<&'static str>,
    /// The data key (`None` when the class has none, or a plain object has no `key`).
    pub data_key: Option<String>,
}

/// Types `data` as the original does and computes its data key.
pub fn classify(data: &Map<String, Value>) -> Result<Payload, InvalidEntry> {
    let value = Value::Object(data.clone());
    for class in PAYLOAD_CLASSES {
        if fits_class(&value, class) {
            return Ok(Payload {
                class: Some(class.name),
                data_key: data_key(class.name, data),
            });
        }
    }
    let data_key = match data.get("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(_) => {
            return Err(InvalidEntry::new(
                "data.key",
                "must be a string (it is part of the entry's identity)",
            ))
        }
    };
    Ok(Payload {
        class: None,
        data_key,
    })
}

/// `_as_key`: parts joined by `|`, `None` for absent ones.
pub(crate) fn as_key<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    parts
        .into_iter()
        .map(|part| part.unwrap_or("None"))
        .collect::<Vec<_>>()
        .join("|")
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

fn nested<'a>(object: &'a Map<String, Value>, name: &str) -> &'a Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    object
        .get(name)
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// `str(x)` of an optional integer, as the crypto keys write it.
fn python_str_int(object: &Map<String, Value>, name: &str) -> String {
    match object.get(name) {
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(true)) => "True".into(),
        Some(Value::Bool(false)) => "False".into(),
        _ => "None".into(),
    }
}

fn crypto_properties_key(properties: &Map<String, Value>) -> String {
    let value = Value::Object(properties.clone());
    let class = CRYPTO_PROPERTIES
        .iter()
        .find(|class| fits_class(&value, class))
        .map(|class| class.name)
        .unwrap_or_default();
    match class {
        "AlgorithmProperties" => as_key([
            text(properties, "name"),
            text(properties, "primitive"),
            text(properties, "parameter_set_identifier"),
            text(properties, "curve"),
            text(properties, "padding"),
        ]),
        "CertificateProperties" => {
            let years = python_str_int(properties, "validity_years");
            as_key([
                text(properties, "kind"),
                Some(years.as_str()),
                text(properties, "signature_algorithm_ref"),
                text(properties, "subject_public_key_ref"),
            ])
        }
        "LibraryProperties" => as_key([text(properties, "name"), text(properties, "version")]),
        "RelatedCryptoMaterialProperties" => {
            let size = python_str_int(properties, "size");
            as_key([
                text(properties, "type"),
                text(properties, "algorithm_ref"),
                text(properties, "curve"),
                Some(size.as_str()),
            ])
        }
        _ => as_key([text(properties, "type"), text(properties, "version")]),
    }
}

fn crypto_asset_key(asset: &Map<String, Value>) -> String {
    let properties = crypto_properties_key(nested(asset, "properties"));
    as_key([text(asset, "asset_type"), Some(properties.as_str())])
}

/// The `key` of a rescoring's `finding` (the class it fits decides the fields), which the
/// original compares with the finding's data key to tell whether a rescoring is about it.
pub fn rescoring_finding_key(finding: &Map<String, Value>) -> String {
    let value = Value::Object(finding.clone());
    let class = RESCORING_FINDINGS
        .iter()
        .find(|class| fits_class(&value, class))
        .map(|class| class.name)
        .unwrap_or_default();
    match class {
        "RescoringVulnerabilityFinding" => {
            as_key([text(finding, "package_name"), text(finding, "cve")])
        }
        "RescoringLicenseFinding" => as_key([
            text(finding, "package_name"),
            text(nested(finding, "license"), "name"),
        ]),
        "MalwareFindingDetails" => as_key([
            text(finding, "content_digest"),
            text(finding, "filename"),
            text(finding, "malware"),
        ]),
        "RescoreSastFinding" => as_key([text(finding, "sast_status"), text(finding, "sub_type")]),
        "RescoringCryptoFinding" => {
            let asset = crypto_asset_key(nested(finding, "asset"));
            as_key([text(finding, "standard"), Some(asset.as_str())])
        }
        "RescoringDikiFinding" => as_key([
            text(finding, "provider_id"),
            text(finding, "ruleset_id"),
            text(finding, "rule_id"),
        ]),
        "RescoringFalcoFinding" | "RescoringKyvernoFinding" => {
            text(finding, "group_hash").unwrap_or("None").to_string()
        }
        "RescoreGitHubSecretFinding" => as_key([text(finding, "html_url")]),
        "RescoringIPFinding" => {
            let mut labels: Vec<&str> = finding
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| labels.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            labels.sort_unstable();
            let labels = labels.join(",");
            match text(nested(finding, "license"), "name") {
                // rescorings from before the licence was dropped keep it in their key
                Some(license) => as_key([
                    text(finding, "package_name"),
                    Some(license),
                    Some(labels.as_str()),
                ]),
                None => as_key([text(finding, "package_name"), Some(labels.as_str())]),
            }
        }
        _ => as_key([text(nested(finding, "osid"), "ID")]),
    }
}

fn user_key(user: &Map<String, Value>) -> String {
    let value = Value::Object(user.clone());
    let default_type = USERS
        .iter()
        .find(|(class, _)| fits_class(&value, class))
        .map_or("user", |(_, default)| *default);
    as_key([
        text(user, "username"),
        Some(text(user, "type").unwrap_or(default_type)),
    ])
}

/// The `key` property of each payload class.
fn data_key(class: &str, data: &Map<String, Value>) -> Option<String> {
    let key = match class {
        "StructureInfo" => as_key([text(data, "package_name"), text(data, "package_version")]),
        "LicenseFinding" => as_key([
            text(data, "package_name"),
            text(data, "package_version"),
            text(nested(data, "license"), "name"),
        ]),
        "VulnerabilityFinding" => as_key([
            text(data, "package_name"),
            text(data, "package_version"),
            text(data, "cve"),
        ]),
        "ClamAVMalwareFinding" => {
            let finding = nested(data, "finding");
            as_key([
                text(finding, "content_digest"),
                text(finding, "filename"),
                text(finding, "malware"),
            ])
        }
        "SastFinding" => as_key([text(data, "sast_status"), text(data, "sub_type")]),
        "DikiFinding" => as_key([
            text(data, "provider_id"),
            text(data, "ruleset_id"),
            text(data, "rule_id"),
        ]),
        "OsID" => return None,
        "OsIdFinding" => as_key([text(nested(data, "osid"), "ID")]),
        "CustomRescoring" => {
            let user = user_key(nested(data, "user"));
            let finding = rescoring_finding_key(nested(data, "finding"));
            let due_date = text(data, "due_date").and_then(crate::model::iso_date);
            as_key([
                text(data, "referenced_type"),
                text(data, "severity"),
                Some(user.as_str()),
                text(data, "comment"),
                Some(finding.as_str()),
                text(data, "allowed_processing_time"),
                due_date.as_deref(),
            ])
        }
        "ComplianceSnapshot" => text(data, "due_date")
            .and_then(crate::model::iso_date)
            .unwrap_or_default(),
        "CryptoAsset" => crypto_asset_key(data),
        "CryptoFinding" => {
            let asset = crypto_asset_key(nested(data, "asset"));
            as_key([text(data, "standard"), Some(asset.as_str())])
        }
        "FalcoFinding" => text(nested(data, "finding"), "group_hash")
            .unwrap_or("None")
            .to_string(),
        "InventoryFinding" => as_key([
            text(data, "provider_name"),
            text(data, "resource_kind"),
            text(data, "resource_name"),
        ]),
        "IPFinding" => {
            let mut labels: Vec<&str> = data
                .get("labels")
                .and_then(Value::as_array)
                .map(|labels| labels.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            labels.sort_unstable();
            let labels = labels.join(",");
            as_key([
                text(data, "package_name"),
                text(data, "package_version"),
                text(nested(data, "license"), "name"),
                Some(labels.as_str()),
                text(nested(data, "policy_violation"), "name"),
            ])
        }
        "GitHubSecretFinding" => text(data, "html_url").unwrap_or("None").to_string(),
        "KyvernoFinding" => text(data, "group_hash").unwrap_or("None").to_string(),
        _ => return None,
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify_json(value: Value) -> Payload {
        classify(value.as_object().unwrap()).unwrap()
    }

    fn vulnerability() -> Value {
        json!({"severity": "HIGH", "package_name": "openssl", "package_version": "3.0.7",
               "base_url": "https://bdba.example.org", "report_url": "https://bdba.example.org/products/4711/",
               "product_id": 4711, "group_id": 42, "cve": "CVE-2023-0286", "cvss_v3_score": 7.4,
               "cvss": {"access_vector": "N"}, "summary": "X.400 address type confusion"})
    }

    #[test]
    fn typed_payloads_and_their_keys() {
        let payload = classify_json(vulnerability());
        assert_eq!(payload.class, Some("VulnerabilityFinding"));
        assert_eq!(
            payload.data_key.as_deref(),
            Some("openssl|3.0.7|CVE-2023-0286")
        );

        let mut no_version = vulnerability();
        no_version["package_version"] = Value::Null;
        assert_eq!(
            classify_json(no_version).data_key.as_deref(),
            Some("openssl|None|CVE-2023-0286")
        );

        // One unexpected field: a plain object, without a key.
        let mut extra = vulnerability();
        extra["unexpected"] = json!(1);
        assert_eq!(
            classify_json(extra),
            Payload {
                class: None,
                data_key: None
            }
        );
        // An integer where a float is declared does not fit either.
        let mut integer_score = vulnerability();
        integer_score["cvss_v3_score"] = json!(7);
        assert_eq!(classify_json(integer_score).class, None);

        let malware = json!({"severity": "BLOCKER", "finding": {"filename": "a.exe", "content_digest": "sha256:1",
            "malware": "Eicar", "context": null}, "octets_count": 10, "scan_duration_seconds": 0.5});
        assert_eq!(
            classify_json(malware).data_key.as_deref(),
            Some("sha256:1|a.exe|Eicar")
        );

        let rescoring = json!({"finding": {"package_name": "openssl", "cve": "CVE-1"}, "referenced_type": "finding/vulnerability",
            "severity": "NONE", "user": {"username": "jane", "github_hostname": "github.com"}, "comment": null,
            "matching_rules": ["custom-rescoring"], "due_date": "2025-01-02"});
        assert_eq!(
            classify_json(rescoring).data_key.as_deref(),
            Some("finding/vulnerability|NONE|jane|github-user|None|openssl|CVE-1|None|2025-01-02")
        );

        assert_eq!(
            classify_json(json!({"key": "abc", "anything": 1}))
                .data_key
                .as_deref(),
            Some("abc")
        );
        assert!(classify(json!({"key": 1}).as_object().unwrap()).is_err());
        assert_eq!(classify_json(json!({"report_url": "x"})).data_key, None);
    }
}
