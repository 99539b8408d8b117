"""The papers sgdlab reproduces or builds on, cited by authors, year and title wherever a user
reads them (claims, figures, reports, `sgdlab list experiments`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    """A citation: who, when, what and where, as every figure, claim and report cites it.

    `str(paper)` is the full reference, 'Authors (year), “Title”, venue'; `paper.short` is
    'Authors year' for titles and one-line mentions.

    Attributes:
        authors: the authors as cited, e.g. "Nacson, Srebro & Soudry".
        year: the year of publication; None for undated sources (lecture notes).
        title: the title.
        venue: where it appeared (journal, conference, memo series); may be empty.

    >>> from sgdlab.papers import NONNENMACHER_2021
    >>> NONNENMACHER_2021.short
    'Nonnenmacher, Reeb & Steinwart 2021'
    >>> print(NONNENMACHER_2021)
    Nonnenmacher, Reeb & Steinwart (2021), “Which minimizer does my neural network converge to?”, ECML PKDD
    """

    authors: str
    year: int | None  # None: undated (lecture notes)
    title: str
    venue: str = ""

    @property
    def when(self) -> str:
        """The year as text, or "n.d." (no date) for an undated source."""
        return str(self.year) if self.year is not None else "n.d."

    @property
    def short(self) -> str:
        """Authors and year, e.g. "Nacson, Srebro & Soudry 2019": for figure titles and one-line mentions."""
        return f"{self.authors} {self.when}"

    def __str__(self) -> str:
        venue = f", {self.venue}" if self.venue else ""
        return f"{self.authors} ({self.when}), “{self.title}”{venue}"


NACSON_2019 = Paper(
    "Nacson, Srebro & Soudry",
    2019,
    "Stochastic gradient descent on separable data: exact convergence with a fixed learning rate",
    "AISTATS",
)
SOUDRY_2018 = Paper(
    "Soudry, Hoffer, Nacson, Gunasekar & Srebro",
    2018,
    "The implicit bias of gradient descent on separable data",
    "JMLR",
)
OSIPOV_2018 = Paper(
    "Osipov, Zharkov, Vlasova & Kuzmina",
    2018,
    "Report on the article “Theory of deep learning IIb: optimization properties of SGD”",
    "student report",
)
ZHANG_2017_SGD = Paper(
    "Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio",
    2017,
    "Theory of deep learning IIb: optimization properties of SGD",
    "CBMM Memo 072",
)
GAMMA_2019 = Paper("Anonymous", 2019, "An optimization principle of deep learning?", "ICLR 2020 submission")
NONNENMACHER_2021 = Paper(
    "Nonnenmacher, Reeb & Steinwart", 2021, "Which minimizer does my neural network converge to?", "ECML PKDD"
)
GISELSSON_SGD = Paper(
    "Giselsson",
    None,
    "Stochastic gradient descent: qualitative convergence behavior",
    "lecture, Lund University",
)
LI_2018 = Paper(
    "Li, Xu, Taylor, Studer & Goldstein", 2018, "Visualizing the loss landscape of neural nets", "NeurIPS"
)
ZHANG_2017_RETHINK = Paper(
    "Zhang, Bengio, Hardt, Recht & Vinyals",
    2017,
    "Understanding deep learning requires rethinking generalization",
    "ICLR",
)
LEE_2019 = Paper(
    "Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington",
    2019,
    "Wide neural networks of any depth evolve as linear models under gradient descent",
    "NeurIPS",
)
JACOT_2018 = Paper(
    "Jacot, Gabriel & Hongler",
    2018,
    "Neural tangent kernel: convergence and generalization in neural networks",
    "NeurIPS",
)
HUTCHINSON_1989 = Paper(
    "Hutchinson",
    1989,
    "A stochastic estimator of the trace of the influence matrix for Laplacian smoothing splines",
    "Comm. Stat. Simul. Comput.",
)
GOODFELLOW_2015 = Paper("Goodfellow", 2015, "Efficient per-example gradient computations", "arXiv:1510.01799")
COHEN_2021 = Paper(
    "Cohen, Kaur, Li, Kolter & Talwalkar",
    2021,
    "Gradient descent on neural networks typically occurs at the edge of stability",
    "ICLR",
)
