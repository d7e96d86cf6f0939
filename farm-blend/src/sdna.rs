//! The file's own struct catalogue (the `DNA1` block) and typed views of struct data through it.
//!
//! Every layout is computed from the catalogue the file carries: member offsets are the sums of
//! the sizes of the members before them (Blender's DNA has no implicit padding), so a field is
//! found by struct and member name whatever version saved the file.

use std::collections::HashMap;

use crate::BlendError;

/// Upper bounds well above anything Blender writes, so a corrupt catalogue cannot make us
/// build huge tables.
const MAX_NAMES: usize = 1 << 17;
const MAX_STRUCTS: usize = 1 << 15;

/// One member of a struct, laid out.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The bare name: `*next` -> `next`, `name[66]` -> `name`, `(*func)()` -> `func`.
    pub(crate) name: String,
    /// Index into the type table.
    pub(crate) type_index: usize,
    pub(crate) is_pointer: bool,
    /// Product of the array dimensions (1 for a scalar).
    pub(crate) count: usize,
    pub(crate) offset: usize,
    pub(crate) size: usize,
}

/// The parsed catalogue.
#[derive(Debug)]
pub(crate) struct Sdna {
    types: Vec<String>,
    /// Per struct: its type index and laid-out members.
    structs: Vec<(usize, Vec<Member>)>,
    struct_by_type: HashMap<usize, usize>,
    /// Bytes of a pointer in this file: 8, or 4 in files saved by a 32-bit Blender.
    pointer_size: usize,
}

fn corrupt(what: &str) -> BlendError {
    BlendError::Corrupt(format!("its struct catalogue (DNA1) is damaged: {what}"))
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlendError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| corrupt("it ends early"))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn tag(&mut self, tag: &[u8; 4]) -> Result<(), BlendError> {
        if self.take(4)? == tag {
            Ok(())
        } else {
            Err(corrupt(&format!(
                "expected `{}`",
                String::from_utf8_lossy(tag)
            )))
        }
    }

    fn u32(&mut self) -> Result<usize, BlendError> {
        let b = self.take(4)?;
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        usize::try_from(v).map_err(|_| corrupt("a count does not fit"))
    }

    fn u16(&mut self) -> Result<usize, BlendError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_le_bytes([b[0], b[1]])))
    }

    fn cstr(&mut self) -> Result<&'a [u8], BlendError> {
        let rest = &self.data[self.pos..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| corrupt("a name is not terminated"))?;
        self.pos += len + 1;
        Ok(&rest[..len])
    }

    fn align4(&mut self) {
        self.pos = self.pos.div_ceil(4) * 4;
        self.pos = self.pos.min(self.data.len());
    }

    fn strings(&mut self, tag: &[u8; 4], max: usize) -> Result<Vec<String>, BlendError> {
        self.tag(tag)?;
        let count = self.u32()?;
        if count > max {
            return Err(corrupt("too many entries"));
        }
        let mut out = Vec::with_capacity(count.min(self.data.len()));
        for _ in 0..count {
            out.push(String::from_utf8_lossy(self.cstr()?).into_owned());
        }
        self.align4();
        Ok(out)
    }
}

/// The parts of a member name: bare name, pointer or not, element count.
fn parse_name(full: &str) -> (String, bool, usize) {
    let is_pointer = full.starts_with('*') || full.starts_with("(*");
    let mut count: usize = 1;
    let mut rest = full;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        let dim: usize = rest[open + 1..open + close].trim().parse().unwrap_or(1);
        count = count.saturating_mul(dim.max(1));
        rest = &rest[open + close + 1..];
    }
    let bare: String = full
        .split('[')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !matches!(c, '*' | '(' | ')'))
        .collect();
    (bare, is_pointer, count)
}

impl Sdna {
    /// Parses the `DNA1` block's data of a file whose pointers are `pointer_size` bytes (4 or 8).
    pub(crate) fn parse(data: &[u8], pointer_size: usize) -> Result<Self, BlendError> {
        let mut c = Cursor { data, pos: 0 };
        c.tag(b"SDNA")?;
        let names = c.strings(b"NAME", MAX_NAMES)?;
        let types = c.strings(b"TYPE", MAX_NAMES)?;
        c.tag(b"TLEN")?;
        let mut type_sizes = Vec::with_capacity(types.len());
        for _ in 0..types.len() {
            type_sizes.push(c.u16()?);
        }
        c.align4();
        c.tag(b"STRC")?;
        let count = c.u32()?;
        if count > MAX_STRUCTS {
            return Err(corrupt("too many structs"));
        }
        let parsed_names: Vec<(String, bool, usize)> =
            names.iter().map(|n| parse_name(n)).collect();
        let mut raw = Vec::with_capacity(count.min(data.len() / 4));
        for _ in 0..count {
            let type_index = c.u16()?;
            let members = c.u16()?;
            let mut list = Vec::with_capacity(members);
            for _ in 0..members {
                let member_type = c.u16()?;
                let name = c.u16()?;
                list.push((member_type, name));
            }
            if type_index >= types.len() {
                return Err(corrupt("a struct names a type that does not exist"));
            }
            raw.push((type_index, list));
        }
        let mut structs = Vec::with_capacity(raw.len());
        let mut struct_by_type = HashMap::with_capacity(raw.len());
        for (index, (type_index, list)) in raw.into_iter().enumerate() {
            let mut offset = 0usize;
            let mut members = Vec::with_capacity(list.len());
            for (member_type, name_index) in list {
                let (name, is_pointer, count) = parsed_names
                    .get(name_index)
                    .cloned()
                    .ok_or_else(|| corrupt("a member names a name that does not exist"))?;
                let element = if is_pointer {
                    pointer_size
                } else {
                    *type_sizes
                        .get(member_type)
                        .ok_or_else(|| corrupt("a member names a type that does not exist"))?
                };
                let size = element.saturating_mul(count);
                members.push(Member {
                    name,
                    type_index: member_type,
                    is_pointer,
                    count,
                    offset,
                    size,
                });
                offset = offset.saturating_add(size);
            }
            // makesdna pads every struct explicitly, so its members fill its declared size: a
            // mismatch means this reader lays the file out wrongly, or the file lies.
            if type_sizes.get(type_index) != Some(&offset) {
                return Err(corrupt(&format!(
                    "struct `{}` has members of {offset} bytes but a size of {}",
                    types[type_index],
                    type_sizes.get(type_index).copied().unwrap_or_default()
                )));
            }
            struct_by_type.entry(type_index).or_insert(index);
            structs.push((type_index, members));
        }
        Ok(Self {
            types,
            structs,
            struct_by_type,
            pointer_size,
        })
    }

    /// The name of struct number `index` (a block header's SDNA index).
    pub(crate) fn struct_name(&self, index: usize) -> Option<&str> {
        let (type_index, _) = self.structs.get(index)?;
        self.types.get(*type_index).map(String::as_str)
    }

    fn member(&self, struct_index: usize, name: &str) -> Option<&Member> {
        self.structs
            .get(struct_index)?
            .1
            .iter()
            .find(|m| m.name == name)
    }

    fn type_name(&self, type_index: usize) -> &str {
        self.types.get(type_index).map_or("", String::as_str)
    }

    /// A view of `data` as struct number `index`.
    pub(crate) fn view<'a>(&'a self, index: usize, data: &'a [u8]) -> View<'a> {
        View {
            sdna: self,
            index,
            data,
        }
    }
}

/// Struct data read through the catalogue. Every getter returns `None` when the member is
/// absent from this file's catalogue, has another kind of type, or lies outside the data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    sdna: &'a Sdna,
    index: usize,
    data: &'a [u8],
}

impl<'a> View<'a> {
    /// This struct's name in the file's catalogue.
    pub(crate) fn struct_name(&self) -> Option<&'a str> {
        self.sdna.struct_name(self.index)
    }

    fn bytes(&self, member: &Member) -> Option<&'a [u8]> {
        self.data
            .get(member.offset..member.offset.checked_add(member.size)?)
    }

    /// An embedded struct member (not a pointer), e.g. `Scene.r` or `Scene.id`.
    pub(crate) fn sub(&self, name: &str) -> Option<View<'a>> {
        let member = self.sdna.member(self.index, name)?;
        if member.is_pointer || member.count != 1 {
            return None;
        }
        let index = *self.sdna.struct_by_type.get(&member.type_index)?;
        Some(View {
            sdna: self.sdna,
            index,
            data: self.bytes(member)?,
        })
    }

    /// A pointer member's stored value (0 is null).
    pub(crate) fn pointer(&self, name: &str) -> Option<u64> {
        let member = self.sdna.member(self.index, name)?;
        if !member.is_pointer || member.count != 1 {
            return None;
        }
        let b = self.bytes(member)?;
        match self.sdna.pointer_size {
            4 => Some(u64::from(u32::from_le_bytes(b.try_into().ok()?))),
            _ => Some(u64::from_le_bytes(b.try_into().ok()?)),
        }
    }

    /// An integer member of any width, widened.
    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        let member = self.sdna.member(self.index, name)?;
        if member.is_pointer || member.count != 1 {
            return None;
        }
        let b = self.bytes(member)?;
        let signed = !matches!(
            self.sdna.type_name(member.type_index),
            "uchar" | "ushort" | "uint" | "uint8_t" | "uint16_t" | "uint32_t" | "uint64_t"
        );
        match (self.sdna.type_name(member.type_index), b.len()) {
            ("float" | "double", _) => None,
            (_, 1) if signed => Some(i64::from(i8::from_le_bytes([b[0]]))),
            (_, 1) => Some(i64::from(b[0])),
            (_, 2) if signed => Some(i64::from(i16::from_le_bytes([b[0], b[1]]))),
            (_, 2) => Some(i64::from(u16::from_le_bytes([b[0], b[1]]))),
            (_, 4) if signed => Some(i64::from(i32::from_le_bytes(b.try_into().ok()?))),
            (_, 4) => Some(i64::from(u32::from_le_bytes(b.try_into().ok()?))),
            (_, 8) => Some(i64::from_le_bytes(b.try_into().ok()?)),
            _ => None,
        }
    }

    /// A `float` or `double` member, widened.
    pub(crate) fn float(&self, name: &str) -> Option<f64> {
        let member = self.sdna.member(self.index, name)?;
        if member.is_pointer || member.count != 1 {
            return None;
        }
        let b = self.bytes(member)?;
        match self.sdna.type_name(member.type_index) {
            "float" => Some(f64::from(f32::from_le_bytes(b.try_into().ok()?))),
            "double" => Some(f64::from_le_bytes(b.try_into().ok()?)),
            _ => None,
        }
    }

    /// A `char` array member, up to its first NUL.
    pub(crate) fn bytes_str(&self, name: &str) -> Option<&'a [u8]> {
        let member = self.sdna.member(self.index, name)?;
        if member.is_pointer || !matches!(self.sdna.type_name(member.type_index), "char" | "uchar")
        {
            return None;
        }
        let b = self.bytes(member)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Some(&b[..end])
    }

    /// A `char` array member as text (invalid UTF-8 replaced).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.bytes_str(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a catalogue from `(struct, [(type, name)])` with the given type sizes.
    pub(crate) fn catalogue(types: &[(&str, u16)], structs: &[(&str, &[(&str, &str)])]) -> Vec<u8> {
        let mut names: Vec<&str> = Vec::new();
        for (_, members) in structs {
            for (_, name) in *members {
                if !names.contains(name) {
                    names.push(name);
                }
            }
        }
        let type_index = |t: &str| types.iter().position(|(n, _)| *n == t).unwrap() as u16;
        let mut out = b"SDNANAME".to_vec();
        out.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for n in &names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        pad(&mut out);
        out.extend_from_slice(b"TYPE");
        out.extend_from_slice(&(types.len() as u32).to_le_bytes());
        for (t, _) in types {
            out.extend_from_slice(t.as_bytes());
            out.push(0);
        }
        pad(&mut out);
        out.extend_from_slice(b"TLEN");
        for (_, size) in types {
            out.extend_from_slice(&size.to_le_bytes());
        }
        pad(&mut out);
        out.extend_from_slice(b"STRC");
        out.extend_from_slice(&(structs.len() as u32).to_le_bytes());
        for (name, members) in structs {
            out.extend_from_slice(&type_index(name).to_le_bytes());
            out.extend_from_slice(&(members.len() as u16).to_le_bytes());
            for (t, n) in *members {
                out.extend_from_slice(&type_index(t).to_le_bytes());
                let ni = names.iter().position(|x| x == n).unwrap() as u16;
                out.extend_from_slice(&ni.to_le_bytes());
            }
        }
        out
    }

    fn pad(out: &mut Vec<u8>) {
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    #[test]
    fn member_names_are_split_into_name_pointer_and_count() {
        assert_eq!(parse_name("*next"), ("next".into(), true, 1));
        assert_eq!(parse_name("name[66]"), ("name".into(), false, 66));
        assert_eq!(parse_name("mat[4][4]"), ("mat".into(), false, 16));
        assert_eq!(parse_name("(*func)()"), ("func".into(), true, 1));
        assert_eq!(parse_name("**mat"), ("mat".into(), true, 1));
    }

    #[test]
    fn offsets_follow_the_members_before_them() {
        let data = catalogue(
            &[
                ("char", 1),
                ("short", 2),
                ("int", 4),
                ("float", 4),
                ("Thing", 28),
            ],
            &[(
                "Thing",
                &[
                    ("char", "label[6]"),
                    ("short", "flag"),
                    ("Thing", "*next"),
                    ("int", "value"),
                    ("float", "ratio"),
                    ("int", "pad"),
                ],
            )],
        );
        let sdna = Sdna::parse(&data, 8).unwrap();
        assert_eq!(sdna.struct_name(0), Some("Thing"));
        let mut bytes = b"hello\0".to_vec();
        bytes.extend_from_slice(&(-3i16).to_le_bytes());
        bytes.extend_from_slice(&0x1234u64.to_le_bytes());
        bytes.extend_from_slice(&(-7i32).to_le_bytes());
        bytes.extend_from_slice(&1.5f32.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        let view = sdna.view(0, &bytes);
        assert_eq!(view.string("label").as_deref(), Some("hello"));
        assert_eq!(view.int("flag"), Some(-3));
        assert_eq!(view.pointer("next"), Some(0x1234));
        assert_eq!(view.int("value"), Some(-7));
        assert_eq!(view.float("ratio"), Some(1.5));
        assert_eq!(view.int("missing"), None);
        assert_eq!(view.int("next"), None, "a pointer is not an integer");
        // Data shorter than the struct: members past the end are absent, not a panic.
        let short = sdna.view(0, &bytes[..10]);
        assert_eq!(short.int("value"), None);
    }

    #[test]
    fn pointers_of_a_32_bit_file_are_4_bytes() {
        let data = catalogue(
            &[("int", 4), ("Link", 12)],
            &[(
                "Link",
                &[("Link", "*next"), ("Link", "*prev"), ("int", "value")],
            )],
        );
        // The same catalogue is 20 bytes of members with 8-byte pointers: refused.
        assert!(Sdna::parse(&data, 8).is_err());
        let sdna = Sdna::parse(&data, 4).unwrap();
        let mut bytes = 0xdead_beefu32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&42i32.to_le_bytes());
        let view = sdna.view(0, &bytes);
        assert_eq!(view.pointer("next"), Some(0xdead_beef));
        assert_eq!(view.pointer("prev"), Some(0));
        assert_eq!(view.int("value"), Some(42));
    }

    #[test]
    fn damaged_catalogues_are_errors() {
        let data = catalogue(&[("int", 4), ("A", 4)], &[("A", &[("int", "x")])]);
        for len in 0..data.len() {
            assert!(
                Sdna::parse(&data[..len], 8).is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut bad = data;
        let last = bad.len() - 1;
        bad[last] = 0x7f; // name index out of range
        assert!(Sdna::parse(&bad, 8).is_err());
        // Members that do not fill the struct's declared size.
        let wrong = catalogue(&[("int", 4), ("A", 8)], &[("A", &[("int", "x")])]);
        let err = Sdna::parse(&wrong, 8).unwrap_err().to_string();
        assert!(
            err.contains("struct `A` has members of 4 bytes but a size of 8"),
            "{err}"
        );
    }
}
