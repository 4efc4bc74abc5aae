//! Knowledge questions: how a question given on the phone is matched to one on file. A question
//! is the same whatever its letter case or spacing, so an answer sent twice names one question.

use super::record::StoredAnswer;
use callguard_core::Secret;
use std::collections::BTreeSet;

/// Most security questions one customer has on file.
pub(crate) const MAX_QUESTIONS: usize = 5;

/// How a security question is compared: trimmed, inner spaces collapsed, letter case folded.
pub(crate) fn question_key(question: &str) -> String {
    question
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// How many different questions are on file.
pub(crate) fn distinct_questions(on_file: &[StoredAnswer]) -> usize {
    on_file
        .iter()
        .map(|a| question_key(&a.question))
        .collect::<BTreeSet<_>>()
        .len()
}

/// For each given answer, the question on file it names (by position), and how many different
/// questions on file the answers name between them.
pub(crate) fn questions_named(
    on_file: &[StoredAnswer],
    given: &[(String, Secret<String>)],
) -> (Vec<Option<usize>>, usize) {
    let named: Vec<Option<usize>> = given
        .iter()
        .map(|(q, _)| {
            let key = question_key(q);
            on_file
                .iter()
                .position(|a| question_key(&a.question) == key)
        })
        .collect();
    let different = named.iter().flatten().collect::<BTreeSet<_>>().len();
    (named, different)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_file() -> Vec<StoredAnswer> {
        ["Town of birth?", "First pet?"]
            .into_iter()
            .map(|q| StoredAnswer {
                question: q.to_owned(),
                answer_hash: String::new(),
            })
            .collect()
    }

    fn given(questions: &[&str]) -> Vec<(String, Secret<String>)> {
        questions
            .iter()
            .map(|q| ((*q).to_owned(), Secret::new("answer".to_owned())))
            .collect()
    }

    #[test]
    fn one_question_asked_twice_in_any_case_or_spacing_names_one_question() {
        let stored = on_file();
        for twice in [
            ["Town of birth?", "Town of birth?"],
            ["Town of birth?", "  town OF   birth? "],
            ["FIRST PET?", "first pet?"],
        ] {
            let (named, different) = questions_named(&stored, &given(&twice));
            assert_eq!(different, 1, "{twice:?}");
            assert_eq!(named[0], named[1]);
        }
        let (named, different) =
            questions_named(&stored, &given(&["first pet?", "Town of birth?"]));
        assert_eq!((named, different), (vec![Some(1), Some(0)], 2));
        let (named, different) = questions_named(&stored, &given(&["Maiden name?", "First pet?"]));
        assert_eq!((named, different), (vec![None, Some(1)], 1));
    }

    #[test]
    fn questions_on_file_that_differ_only_in_case_count_once() {
        let mut stored = on_file();
        stored.push(StoredAnswer {
            question: "first  PET?".to_owned(),
            answer_hash: String::new(),
        });
        assert_eq!(distinct_questions(&stored), 2);
    }
}
