//! Verifiable constraints attached to any prompt (how instruction-following
//! training sets are built from ordinary prompts): 1–k instructions drawn
//! from the 25 ids with sensible kwargs, reproducibly from the prompt's key
//! and a seed, never two that contradict each other; their text appended to
//! the prompt and their ids and kwargs returned as the gold.

use serde_json::{Map, Value, json};

use super::checks::{IDS, Instruction};

/// Common nouns drawn as keywords, forbidden words and first words.
const WORDS: &[&str] = &[
    "balance", "bridge", "garden", "history", "journey", "kitchen", "language", "market", "memory",
    "mountain", "music", "ocean", "people", "planet", "river", "science", "season", "signal",
    "story", "summer", "system", "teacher", "thought", "travel", "village", "weather", "window",
    "winter", "letter", "energy", "future", "health", "island", "library", "machine", "network",
    "pattern", "reason", "result", "school", "silver", "simple", "spirit", "square", "stone",
    "student", "support", "theory", "value", "vision",
];

/// Phrases a response may be asked to end with.
const ENDINGS: &[&str] = &[
    "Any other questions?",
    "Let me know if this helps.",
    "That is all for now.",
    "Hope this is useful.",
];

/// Languages a response may be asked to be in (all detectable).
const LANGUAGES: &[(&str, &str)] = &[
    ("de", "German"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("it", "Italian"),
    ("pt", "Portuguese"),
    ("ru", "Russian"),
    ("hi", "Hindi"),
    ("ko", "Korean"),
];

/// Pairs that cannot both hold (or make each other moot), by id prefix
/// or id: the reference's conflicts, restated.
fn conflicts(a: &str, b: &str) -> bool {
    let pair = |x: &str, y: &str| (a == x && b == y) || (a == y && b == x);
    let everything_but = |id: &str, allowed: &[&str]| {
        (a == id && !allowed.contains(&b)) || (b == id && !allowed.contains(&a))
    };
    a == b
        || everything_but("detectable_format:constrained_response", &[])
        || everything_but(
            "detectable_format:json_format",
            &["keywords:forbidden_words", "keywords:existence"],
        )
        || everything_but(
            "combination:two_responses",
            &[
                "keywords:forbidden_words",
                "keywords:existence",
                "language:response_language",
                "detectable_format:title",
                "punctuation:no_comma",
            ],
        )
        || everything_but(
            "combination:repeat_prompt",
            &[
                "keywords:existence",
                "detectable_format:title",
                "punctuation:no_comma",
            ],
        )
        || (a.starts_with("language:") || b.starts_with("language:"))
            && [
                "detectable_format:multiple_sections",
                "keywords:existence",
                "keywords:frequency",
                "keywords:forbidden_words",
                "startend:end_checker",
                "change_case:english_capital",
                "change_case:english_lowercase",
            ]
            .iter()
            .any(|x| a == *x || b == *x)
        || pair(
            "length_constraints:number_paragraphs",
            "length_constraints:nth_paragraph_first_word",
        )
        || pair(
            "length_constraints:number_paragraphs",
            "length_constraints:number_sentences",
        )
        || pair(
            "detectable_format:multiple_sections",
            "detectable_format:number_highlighted_sections",
        )
        || pair(
            "change_case:capital_word_frequency",
            "change_case:english_lowercase",
        )
        || pair(
            "change_case:capital_word_frequency",
            "change_case:english_capital",
        )
        || pair(
            "change_case:english_lowercase",
            "change_case:english_capital",
        )
        || pair("startend:quotation", "detectable_format:title")
}

/// A small deterministic generator (SplitMix64).
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }

    fn relation(&mut self) -> &'static str {
        if self.next().is_multiple_of(2) {
            "less than"
        } else {
            "at least"
        }
    }
}

/// The constrained prompt and its gold (`{"instruction_id_list", "kwargs"}`
/// as JSON) for `prompt`, drawn from `key` and `seed` with 1 to `max_k`
/// instructions.
pub fn constrain(prompt: &str, key: &str, max_k: usize, seed: u64) -> (String, String) {
    let mut draw = Draw(seed ^ hash(key));
    let k = draw.range(1, max_k.max(1) as u64) as usize;
    let mut chosen: Vec<&str> = Vec::new();
    // Draws until k fit; every id conflicts with at most all others, so a
    // bounded number of tries always ends.
    for _ in 0..200 {
        if chosen.len() == k {
            break;
        }
        let (id, _) = *draw.pick(IDS);
        if chosen.iter().all(|c| !conflicts(c, id)) {
            chosen.push(id);
        }
    }
    let mut texts = Vec::new();
    let mut kwargs = Vec::new();
    for id in &chosen {
        let (text, kw) = instruction(id, prompt, &mut draw);
        debug_assert!(Instruction::parse(id, &kw).is_ok(), "{id} {kw:?}");
        texts.push(text);
        kwargs.push(Value::Object(kw));
    }
    let constrained = format!("{}\n\n{}", prompt.trim_end(), texts.join(" "));
    let gold = json!({"instruction_id_list": chosen, "kwargs": kwargs}).to_string();
    (constrained, gold)
}

/// FNV-1a of a key, to seed its draw.
fn hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn instruction(id: &str, prompt: &str, d: &mut Draw) -> (String, Map<String, Value>) {
    let mut kw = Map::new();
    let mut put = |k: &str, v: Value| {
        kw.insert(k.to_string(), v);
    };
    // Worded apart from IFEval's own prompts (no run of 8 words in common),
    // so that decontaminating against IFEval flags a copied prompt, never
    // the instructions attached to it.
    let fewer = |r: &str| {
        if r == "less than" {
            "fewer than"
        } else {
            "at least"
        }
    };
    let text = match id {
        "keywords:existence" => {
            let (a, b) = (*d.pick(WORDS), *d.pick(WORDS));
            put("keywords", json!([a, b]));
            format!("Make sure the words \"{a}\" and \"{b}\" both appear in what you write.")
        }
        "keywords:frequency" => {
            let (w, n, r) = (*d.pick(WORDS), d.range(1, 3), d.relation());
            put("keyword", json!(w));
            put("frequency", json!(n));
            put("relation", json!(r));
            format!("Use the word \"{w}\" {} {n} times.", fewer(r))
        }
        "keywords:forbidden_words" => {
            let (a, b) = (*d.pick(WORDS), *d.pick(WORDS));
            put("forbidden_words", json!([a, b]));
            format!("Avoid the words \"{a}\" and \"{b}\" entirely.")
        }
        "keywords:letter_frequency" => {
            let letter = (b'a' + d.range(0, 25) as u8) as char;
            let (n, r) = (d.range(2, 10), d.relation());
            put("letter", json!(letter.to_string()));
            put("let_frequency", json!(n));
            put("let_relation", json!(r));
            format!("The letter \"{letter}\" must occur {} {n} times in your reply.", fewer(r))
        }
        "language:response_language" => {
            let (code, name) = *d.pick(LANGUAGES);
            put("language", json!(code));
            format!("Reply only in {name}, with no English or any other language mixed in.")
        }
        "length_constraints:number_sentences" => {
            let (n, r) = (d.range(2, 12), d.relation());
            put("num_sentences", json!(n));
            put("relation", json!(r));
            format!("Keep your reply to {} {n} sentences.", fewer(r))
        }
        "length_constraints:number_paragraphs" => {
            let n = d.range(2, 5);
            put("num_paragraphs", json!(n));
            format!(
                "Split your reply into {n} paragraphs, with a line holding only *** between consecutive ones."
            )
        }
        "length_constraints:number_words" => {
            let (n, r) = (d.range(5, 40) * 10, d.relation());
            put("num_words", json!(n));
            put("relation", json!(r));
            let bound = if r == "less than" { "under" } else { "at least" };
            format!("Your reply must be {bound} {n} words long.")
        }
        "length_constraints:nth_paragraph_first_word" => {
            let n = d.range(2, 5);
            let nth = d.range(1, n);
            let w = *d.pick(WORDS);
            put("num_paragraphs", json!(n));
            put("nth_paragraph", json!(nth));
            put("first_word", json!(w));
            format!(
                "Write {n} paragraphs with one blank line between neighbours; paragraph number {nth} has to begin with the word \"{w}\"."
            )
        }
        "detectable_content:number_placeholders" => {
            let n = d.range(1, 4);
            put("num_placeholders", json!(n));
            format!("Leave at least {n} blanks to fill in later, written in square brackets like [name].")
        }
        "detectable_content:postscript" => {
            let m = *d.pick(&["P.S.", "P.P.S"]);
            put("postscript_marker", json!(m));
            format!("Close with a postscript that begins with {m}")
        }
        "detectable_format:number_bullet_lists" => {
            let n = d.range(2, 6);
            put("num_bullets", json!(n));
            format!(
                "Give exactly {n} points as a markdown list, each on its own line starting with an asterisk:\n* one point\n* another point"
            )
        }
        "detectable_format:constrained_response" => {
            "Reply with just one sentence: \"My answer is yes.\" to agree, \"My answer is no.\" to disagree, \"My answer is maybe.\" when unsure.".to_string()
        }
        "detectable_format:number_highlighted_sections" => {
            let n = d.range(1, 4);
            put("num_highlights", json!(n));
            format!("Mark at least {n} parts of your reply with markdown italics, for example *this part*.")
        }
        "detectable_format:multiple_sections" => {
            let (s, n) = (*d.pick(&["Section", "SECTION"]), d.range(2, 5));
            put("section_spliter", json!(s));
            put("num_sections", json!(n));
            format!(
                "Organise your reply in {n} parts, each opening with a heading line \"{s} X\" where X is its number."
            )
        }
        "detectable_format:json_format" => {
            "Format the whole reply as valid JSON (a markdown code fence around it is fine).".to_string()
        }
        "detectable_format:title" => {
            "Start with a title set between double angle brackets, like <<a title>>.".to_string()
        }
        "combination:two_responses" => {
            "Write two different replies with six asterisks (******) on their own between them and nothing else.".to_string()
        }
        "combination:repeat_prompt" => {
            put("prompt_to_repeat", json!(prompt.trim_end()));
            "Begin by copying the request above exactly as written, saying nothing before it, and then answer it (this sentence is not part of what you copy).".to_string()
        }
        "startend:end_checker" => {
            let e = *d.pick(ENDINGS);
            put("end_phrase", json!(e));
            format!("Your last words must be \"{e}\", with nothing after them.")
        }
        "change_case:capital_word_frequency" => {
            let (n, r) = (d.range(2, 20), d.relation());
            put("capital_frequency", json!(n));
            put("capital_relation", json!(r));
            format!("Write {} {n} words fully in capital letters.", fewer(r))
        }
        "change_case:english_capital" => "Reply in English using capital letters only.".to_string(),
        "change_case:english_lowercase" => {
            "Reply in English using lowercase letters only, with no capitals at all.".to_string()
        }
        "punctuation:no_comma" => "Do not put a single comma anywhere in your reply.".to_string(),
        "startend:quotation" => "Put your whole reply inside double quotation marks.".to_string(),
        other => unreachable!("{other} is one of IDS"),
    };
    (text, kw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier::ifeval::gold;

    #[test]
    fn constraints_are_reproducible_checkable_and_consistent() {
        let (p1, g1) = constrain("Tell me about rivers.", "row-1", 3, 7);
        let (p2, g2) = constrain("Tell me about rivers.", "row-1", 3, 7);
        assert_eq!((&p1, &g1), (&p2, &g2));
        assert!(p1.starts_with("Tell me about rivers.\n\n"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..2000 {
            let (_, g) = constrain("Write a poem.", &format!("k{i}"), 3, 0);
            let gold = gold::read(Some(&g), None).unwrap_or_else(|e| panic!("{g}: {e}"));
            assert!((1..=3).contains(&gold.ids.len()));
            for (a, id_a) in gold.ids.iter().enumerate() {
                seen.insert(id_a.clone());
                for id_b in &gold.ids[a + 1..] {
                    assert!(!conflicts(id_a, id_b), "{id_a} with {id_b}");
                }
            }
        }
        assert_eq!(seen.len(), IDS.len(), "every id is drawn");
        let (_, other_seed) = constrain("Tell me about rivers.", "row-1", 3, 8);
        let (_, other_key) = constrain("Tell me about rivers.", "row-2", 3, 7);
        assert!(other_seed != g1 || other_key != g1);
    }
}
