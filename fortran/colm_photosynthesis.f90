! Leaf photosynthesis and stomatal conductance of one big leaf (sunlit or shaded).
!
! - C3: Farquhar, von Caemmerer and Berry (1980) as in Collatz et al. (1991) and the CLM3/CLM4 technical notes:
!     w_c = Vcmax (ci - G*) / (ci + Kc (1 + o/Ko)), w_j = (ci - G*) / (ci + 2 G*) 4.6e-6 eps APAR, w_e = 0.5 Vcmax
! - C4: Collatz, Ribas-Carbo and Berry (1992): w_c = Vcmax, w_j = 4.6e-6 eps APAR, w_e = 4000 Vcmax ci / P.
! - Co-limitation (Collatz et al. 1991; Sellers et al. 1996, SiB2/CoLM): smaller roots of
!     theta w_p^2 - (w_c + w_j) w_p + w_c w_j = 0 (theta 0.98 C3, 0.80 C4), then
!     beta A^2 - (w_p + w_e) A + w_p w_e = 0 (beta 0.95). Net assimilation A_n = A - R_d.
! - Temperature (Q10 forms of CLM3 / SiB2, q = (T - tfrz - 25)/10): Kc = 30 x 2.1^q Pa, Ko = 30000 x 1.2^q Pa,
!   G* = 0.5 o / (2600 x 0.57^q) Pa; C3 Vcmax = Vcmax25 2.4^q / (1 + exp((-220000 + 710 T)/(R T)));
!   C4 Vcmax = Vcmax25 2^q / ((1 + exp(0.2 (15 - Tc))) (1 + exp(0.3 (Tc - 40)))) (Collatz et al. 1992);
!   R_d = 0.015 Vcmax (C3), 0.025 Vcmax (C4) (SiB2).
! - Soil water stress (CLM4.5 style): Vcmax is multiplied by btran and the Ball-Berry intercept is
!   max(b btran, 1e-6 mol m-2 s-1).
! - Ball and Berry (1987) with the leaf boundary layer: g_s = m A_n h_s P / c_s + b, h_s = e_s / e_i with
!   e_s = (g_s e_i + g_b e_a)/(g_s + g_b), solved as a quadratic in g_s; c_s = c_a - 1.4 A_n P / g_b,
!   c_i = c_s - 1.6 A_n P / g_s. The intercellular CO2 is the root of c_i - c_i,new(c_i) = 0 (to
!   |c_i - c_i,new| < 1e-7 c_a), found from a start value (the previous leaf iteration's c_i) by a Newton step
!   with the analytic slope and then secant steps, safeguarded by a bracket that always contains the root
!   and the Illinois (modified regula falsi) method as fallback.
! Units: conductances mol m-2 s-1 inside, partial pressures Pa, rates mol CO2 m-2 (leaf) s-1.
module colm_photosynthesis
  use colm_const, only: r8, tfrz
  use colm_turbulence, only: qsat
  implicit none
  private
  public :: leaf_photosynthesis, photo_rates, photo_temperature, photo_temp_t, colimit
  public :: rgas_univ, umol_per_j, o2_frac, mol_to_kgc

  ! temperature factors of the leaf biochemistry at one leaf temperature, shared by the sunlit and shaded leaf
  type :: photo_temp_t
    real(r8) :: kc, ko, gammas                    ! Michaelis-Menten constants, CO2 compensation point (Pa)
    real(r8) :: vnum, vden                        ! Vcmax = Vcmax25 vnum / vden before the water stress (-)
    ! derived once for both leaves (saves three divisions per leaf)
    real(r8) :: vfac                              ! vnum / vden (-)
    real(r8) :: kcm                               ! Kc (1 + o / Ko) (Pa)
    real(r8) :: cmol                              ! molar density of air P / (R T) (mol m-3)
  end type photo_temp_t

  real(r8), parameter :: rgas_univ = 8.314_r8     ! universal gas constant (J mol-1 K-1)
  real(r8), parameter :: umol_per_j = 4.6e-6_r8   ! photon flux per unit PAR energy (mol J-1)
  real(r8), parameter :: o2_frac = 0.209_r8       ! O2 mole fraction of air (mol mol-1)
  real(r8), parameter :: mol_to_kgc = 12.011e-3_r8 ! mass of carbon per mol CO2 (kg mol-1)
  real(r8), parameter :: g0_min = 1.0e-6_r8       ! smallest stomatal conductance (mol m-2 s-1)
  real(r8), parameter :: cs_min = 1.0e-6_r8       ! smallest leaf-surface CO2 partial pressure (Pa)
  real(r8), parameter :: ci_ca_c3 = 0.7_r8        ! start value of ci / ca without a previous value, C3 (-)
  real(r8), parameter :: ci_ca_c4 = 0.4_r8        ! the same for C4 (-)
  ! logs of the Q10 factors: b**q = exp(q log b) (one exp instead of a pow)
  real(r8), parameter :: ln_q10_kc = log(2.1_r8), ln_q10_ko = log(1.2_r8), ln_q10_gs = log(0.57_r8)
  real(r8), parameter :: ln_q10_v3 = log(2.4_r8), ln_q10_v4 = log(2.0_r8)

contains

  ! Smaller root of theta x^2 - (a + b) x + a b = 0 (smooth minimum of a and b), stable form.
  pure real(r8) function colimit(theta, a, b)
    real(r8), intent(in) :: theta                 ! curvature parameter, 0 < theta <= 1 (-)
    real(r8), intent(in) :: a, b                  ! the two limiting rates (mol m-2 s-1)
    real(r8) :: s, disc                           ! sum, discriminant (mol2 m-4 s-2)
    s = a + b
    disc = sqrt(max(s * s - 4.0_r8 * theta * a * b, 0.0_r8))
    if (s > 0.0_r8) then
      colimit = 2.0_r8 * a * b / (s + disc)
    else
      colimit = (s - disc) / (2.0_r8 * theta)
    end if
  end function colimit

  ! Temperature factors of the leaf biochemistry (header), independent of the leaf's Vcmax25 and water stress.
  pure subroutine photo_temperature(c3, tleaf, psurf, pt)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    type(photo_temp_t), intent(out) :: pt         ! temperature factors (mixed)
    real(r8) :: q, tc                             ! (T - 25 C)/10 (-), temperature (deg C)
    tc = tleaf - tfrz
    q = (tc - 25.0_r8) / 10.0_r8
    pt%kc = 30.0_r8 * exp(q * ln_q10_kc)
    pt%ko = 30000.0_r8 * exp(q * ln_q10_ko)
    if (c3) then
      pt%gammas = 0.5_r8 * o2_frac * psurf / (2600.0_r8 * exp(q * ln_q10_gs))
      pt%vnum = exp(q * ln_q10_v3)
      pt%vden = 1.0_r8 + exp((-220000.0_r8 + 710.0_r8 * tleaf) / (rgas_univ * tleaf))
    else
      pt%gammas = 0.0_r8
      pt%vnum = exp(q * ln_q10_v4)
      pt%vden = (1.0_r8 + exp(0.2_r8 * (15.0_r8 - tc))) * (1.0_r8 + exp(0.3_r8 * (tc - 40.0_r8)))
    end if
    pt%vfac = pt%vnum / pt%vden
    pt%kcm = pt%kc * (1.0_r8 + o2_frac * psurf / pt%ko)
    pt%cmol = psurf / (rgas_univ * tleaf)
  end subroutine photo_temperature

  ! Temperature- and water-stress-adjusted parameters of one leaf from the temperature factors.
  pure subroutine photo_apply(c3, vcmax25, btran, pt, vcmax, rd, gammas)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    type(photo_temp_t), intent(in) :: pt          ! temperature factors (mixed)
    real(r8), intent(out) :: vcmax                ! maximum carboxylation rate (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! leaf dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: gammas               ! CO2 compensation point (Pa)
    gammas = pt%gammas
    vcmax = vcmax25 * pt%vfac * btran
    if (c3) then
      rd = 0.015_r8 * vcmax
    else
      rd = 0.025_r8 * vcmax
    end if
  end subroutine photo_apply

  ! Temperature- and water-stress-adjusted parameters of the leaf biochemistry.
  pure subroutine photo_rates(c3, vcmax25, btran, tleaf, psurf, vcmax, rd, kc, ko, gammas)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(out) :: vcmax                ! maximum carboxylation rate (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! leaf dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: kc                   ! Michaelis-Menten constant for CO2 (Pa)
    real(r8), intent(out) :: ko                   ! Michaelis-Menten constant for O2 (Pa)
    real(r8), intent(out) :: gammas               ! CO2 compensation point (Pa)
    type(photo_temp_t) :: pt                      ! temperature factors (mixed)
    call photo_temperature(c3, tleaf, psurf, pt)
    call photo_apply(c3, vcmax25, btran, pt, vcmax, rd, gammas)
    kc = pt%kc
    ko = pt%ko
  end subroutine photo_rates

  ! Photosynthesis and stomatal resistance of one big leaf.
  pure subroutine leaf_photosynthesis(c3, vcmax25, effcon, g1, g0, btran, apar, tleaf, psurf, co2_ppm, ea, rb, &
                                      an, ag, rd, ci, cs, gs, rs, ci_guess, pt_in, ei_in)
    logical, intent(in) :: c3                     ! .true. for C3, .false. for C4 (-)
    real(r8), intent(in) :: vcmax25               ! Vcmax at 25 C of this big leaf (mol CO2 m-2 s-1)
    real(r8), intent(in) :: effcon                ! quantum efficiency (mol CO2 mol-1 photon)
    real(r8), intent(in) :: g1                    ! Ball-Berry slope (-)
    real(r8), intent(in) :: g0                    ! Ball-Berry intercept (mol H2O m-2 s-1)
    real(r8), intent(in) :: btran                 ! soil water stress factor (-)
    real(r8), intent(in) :: apar                  ! absorbed PAR per unit leaf area (W m-2)
    real(r8), intent(in) :: tleaf                 ! leaf temperature (K)
    real(r8), intent(in) :: psurf                 ! air pressure (Pa)
    real(r8), intent(in) :: co2_ppm               ! CO2 mole fraction of canopy air (umol mol-1)
    real(r8), intent(in) :: ea                    ! vapour pressure of canopy air (Pa)
    real(r8), intent(in) :: rb                    ! leaf boundary-layer resistance (s m-1)
    real(r8), intent(out) :: an                   ! net assimilation (mol CO2 m-2 s-1)
    real(r8), intent(out) :: ag                   ! gross assimilation (mol CO2 m-2 s-1)
    real(r8), intent(out) :: rd                   ! dark respiration (mol CO2 m-2 s-1)
    real(r8), intent(out) :: ci                   ! intercellular CO2 (Pa)
    real(r8), intent(out) :: cs                   ! leaf-surface CO2 (Pa)
    real(r8), intent(out) :: gs                   ! stomatal conductance to water vapour (mol m-2 s-1)
    real(r8), intent(out) :: rs                   ! stomatal resistance (s m-1)
    real(r8), intent(in), optional :: ci_guess    ! start value for ci, e.g. the previous leaf iteration's (Pa)
    type(photo_temp_t), intent(in), optional :: pt_in ! photo_temperature(c3, tleaf, psurf) if known (mixed)
    real(r8), intent(in), optional :: ei_in       ! saturation vapour pressure at tleaf (qsat) if known (Pa)
    ! curvatures of the co-limitations (header) and 1 / (2 theta) of their smaller roots (-)
    real(r8), parameter :: th_c3 = 0.98_r8, th_c4 = 0.80_r8, th_e = 0.95_r8
    real(r8), parameter :: h_c3 = 0.5_r8 / th_c3, h_c4 = 0.5_r8 / th_c4, h_e = 0.5_r8 / th_e
    real(r8) :: vcmax, gammas                     ! biochemical parameters (mol m-2 s-1, Pa)
    type(photo_temp_t) :: pt                      ! temperature factors if pt_in is absent (mixed)
    real(r8) :: je                                ! light term (mol m-2 s-1)
    real(r8) :: ca                                ! CO2 partial pressure (Pa)
    real(r8) :: cmol                              ! molar density of air P / (R T) (mol m-3)
    real(r8) :: gb                                ! boundary-layer conductance (mol m-2 s-1)
    real(r8) :: bb, rbb                           ! stressed Ball-Berry intercept, its inverse (mol m-2 s-1, m2 s mol-1)
    real(r8) :: ei, dum1, dum2, dum3              ! leaf saturation vapour pressure (Pa), unused
    real(r8) :: hra                               ! humidity ratio at the leaf (-)
    ! terms of the residual that do not depend on ci, hoisted out of ci_residual
    real(r8) :: kcm                               ! Kc (1 + o / Ko) (Pa)
    real(r8) :: g2                                ! 2 G* (Pa)
    real(r8) :: we3, kwe, wp4                     ! C3 w_e, C4 d w_e / d ci, C4 co-limited w_p (mol m-2 s-1, mol m-2 s-1 Pa-1, mol m-2 s-1)
    real(r8) :: p14, p16                          ! 1.4 P / g_b (Pa m2 s mol-1), 1.6 P (Pa)
    real(r8) :: gbb, g1p, g1ph, gb2               ! g_b - b (mol m-2 s-1), m P, m P h (Pa), 2 g_b (mol m-2 s-1)
    real(r8) :: tol                               ! residual tolerance 1e-7 ca (Pa)
    real(r8) :: lo, hi, flo, fhi, x, fx           ! bracket and function values (Pa)
    real(r8) :: hi0, xp, fp, xn, dfx              ! upper bound, previous point and residual, next point (Pa), slope (-)
    real(r8) :: agx, csx, rgx                     ! state at x: A (mol m-2 s-1), c_s (Pa), 1 / g_s (m2 s mol-1)
    real(r8) :: d1, d2, d3                        ! unused outputs (mixed)
    logical :: haslo, hashi, done                 ! f(lo), f(hi) evaluated; |f(x)| meets the tolerance
    integer :: it, side

    ca = co2_ppm * 1.0e-6_r8 * psurf
    if (present(pt_in)) then
      call photo_apply(c3, vcmax25, btran, pt_in, vcmax, rd, gammas)
      kcm = pt_in%kcm
      cmol = pt_in%cmol
    else
      call photo_temperature(c3, tleaf, psurf, pt)
      call photo_apply(c3, vcmax25, btran, pt, vcmax, rd, gammas)
      kcm = pt%kcm
      cmol = pt%cmol
    end if
    gb = cmol / rb
    p14 = 1.4_r8 * rgas_univ * tleaf * rb         ! 1.4 P / g_b without a division
    p16 = 1.6_r8 * psurf
    bb = max(g0 * btran, g0_min)
    if (present(ei_in)) then
      ei = ei_in
    else
      call qsat(tleaf, psurf, ei, dum1, dum2, dum3)
    end if
    hra = min(max(ea, 0.05_r8 * ei), ei) / ei
    je = effcon * umol_per_j * max(apar, 0.0_r8)

    if (je <= 0.0_r8 .or. vcmax <= 0.0_r8) then
      ! dark or fully stressed: no assimilation, minimum conductance
      ag = 0.0_r8
      an = -rd
      gs = bb
      cs = max(ca - p14 * an, cs_min)
      ci = cs - p16 * an / gs
      rs = cmol / gs
      return
    end if

    rbb = 1.0_r8 / bb
    g2 = 2.0_r8 * gammas
    we3 = 0.5_r8 * vcmax
    kwe = 4000.0_r8 * vcmax / psurf
    if (.not. c3) wp4 = colimit(th_c4, vcmax, je)
    gbb = gb - bb
    g1p = g1 * psurf
    g1ph = g1p * hra
    gb2 = 2.0_r8 * gb
    tol = 1.0e-7_r8 * ca
    hi0 = ca + rd * (p14 + p16 * rbb) + 1.0_r8

    ! start at the guess (previous leaf iteration), else at a typical ci / ca of the Ball-Berry model
    x = merge(ci_ca_c3, ci_ca_c4, c3) * ca
    if (present(ci_guess)) then
      if (ci_guess > 0.0_r8) x = ci_guess
    end if
    if (.not. (x > 0.0_r8 .and. x < hi0)) x = 0.5_r8 * hi0
    ! f(0) < 0 < f(hi0) always (header); the values at the ends are computed only if the fallback needs them
    lo = 0.0_r8
    hi = hi0
    haslo = .false.
    hashi = .false.
    call ci_residual(x, fx, agx, csx, rgx, dfx)
    done = abs(fx) < tol
    ! a Newton step with the analytic slope, then secant steps: usually 1-2 more residuals. Fallback to the
    ! Illinois method on the bracket if a step leaves it or does not halve |f| (kinks at A_n = 0, c_s clip).
    it = 0
    do while (.not. done)
      if (fx > 0.0_r8) then
        hi = x
        fhi = fx
        hashi = .true.
      else
        lo = x
        flo = fx
        haslo = .true.
      end if
      if (it == 0) then
        if (.not. (dfx > 0.01_r8 .and. dfx < 100.0_r8)) dfx = 1.0_r8   ! c_i,new depends little on c_i
        xn = x - fx / dfx
      else if (abs(fx) <= 0.5_r8 * abs(fp) .and. fx /= fp) then
        xn = x - fx * (x - xp) / (fx - fp)
      else
        exit
      end if
      if (.not. (xn > lo .and. xn < hi) .or. it == 10) exit
      it = it + 1
      xp = x
      fp = fx
      x = xn
      call ci_residual(x, fx, agx, csx, rgx)
      done = abs(fx) < tol
    end do
    if (.not. done) then
      ! Illinois (modified regula falsi) on the bracket
      if (.not. haslo) call ci_residual(lo, flo, d1, d2, d3)
      if (.not. hashi) call ci_residual(hi, fhi, d1, d2, d3)
      side = 0
      do it = 1, 200
        x = (lo * fhi - hi * flo) / (fhi - flo)
        call ci_residual(x, fx, agx, csx, rgx)
        if (abs(fx) < tol .or. hi - lo < 1.0e-10_r8 * ca) exit
        if (fx > 0.0_r8) then
          hi = x
          fhi = fx
          if (side == 1) flo = 0.5_r8 * flo
          side = 1
        else
          lo = x
          flo = fx
          if (side == -1) fhi = 0.5_r8 * fhi
          side = -1
        end if
      end do
    end if
    ci = x
    ag = agx
    an = agx - rd
    cs = csx
    gs = 1.0_r8 / rgx
    rs = cmol * rgx

  contains

    ! ci - c_i,new(ci) (negative at ci = 0, positive at hi0, see header), the state at ci and, if asked,
    ! the derivative d res / d ci. Written for a short dependency chain: the smaller roots as
    ! (s - disc) / (2 theta) (absolute error ~ eps (a + b), far below the tolerance), the C3 division in
    ! parallel with the first square root, the Ball-Berry quadratic multiplied by c_s,
    ! c_s g_s^2 + bq g_s - cq = 0, solved for 1 / g_s with its division in parallel with the square root.
    pure subroutine ci_residual(cix, res, a_g, c_s, rg_s, dres)
      real(r8), intent(in) :: cix                 ! trial intercellular CO2 (Pa)
      real(r8), intent(out) :: res                ! residual (Pa)
      real(r8), intent(out) :: a_g                ! gross assimilation (mol CO2 m-2 s-1)
      real(r8), intent(out) :: c_s                ! leaf-surface CO2 (Pa)
      real(r8), intent(out) :: rg_s               ! 1 / stomatal conductance (m2 s mol-1)
      real(r8), intent(out), optional :: dres     ! d res / d cix (-)
      real(r8) :: dc, dj, r2                      ! denominators of w_c and w_j (Pa), 1 / their product (Pa-2)
      real(r8) :: u, v, k                         ! w_c = k u, w_j = k v (mol m-2 s-1 Pa, mol m-2 s-1 Pa, Pa-1)
      real(r8) :: wp, we                          ! co-limited Rubisco/light rate, export rate (mol m-2 s-1)
      real(r8) :: s1, s2, disc1, disc2            ! sums and discriminant roots of the co-limitations (s1, disc1 of u, v)
      real(r8) :: a_n                             ! net assimilation (mol m-2 s-1)
      real(r8) :: bq, cq2, rcq, sq                ! quadratic in g_s times c_s: bq (Pa mol m-2 s-1), 2 cq, 1 / (2 cq), root
      real(r8) :: p14c                            ! -d c_s / d A_n: p14, 0 where c_s is clipped (Pa m2 s mol-1)
      real(r8) :: num, den                        ! d res / d ci - 1 = num / den (mixed)
      real(r8) :: q                               ! d g_s / d A_n / g_s^2 times sq (mixed)
      if (c3) then
        ! w_c = k u and w_j = k v with k = (ci - G*) / (dc dj); the smaller root is homogeneous,
        ! x(k u, k v) = k x(u, v) for k > 0 (k times the larger root for k < 0)
        dc = cix + kcm
        dj = cix + g2
        r2 = 1.0_r8 / (dc * dj)
        u = vcmax * dj
        v = je * dc
        s1 = u + v
        disc1 = sqrt(max(s1 * s1 - 4.0_r8 * th_c3 * u * v, 0.0_r8))
        k = (cix - gammas) * r2
        if (k >= 0.0_r8) then
          wp = k * (s1 - disc1) * h_c3
        else
          wp = k * (s1 + disc1) * h_c3
        end if
        we = we3
      else
        wp = wp4
        we = kwe * cix
      end if
      s2 = wp + we
      disc2 = sqrt(max(s2 * s2 - 4.0_r8 * th_e * wp * we, 0.0_r8))
      a_g = (s2 - disc2) * h_e
      a_n = a_g - rd
      c_s = max(ca - p14 * a_n, cs_min)
      if (a_n <= 0.0_r8) then
        rg_s = rbb
      else
        bq = c_s * gbb - g1p * a_n
        cq2 = gb2 * (g1ph * a_n + bb * c_s)
        sq = sqrt(bq * bq + 2.0_r8 * c_s * cq2)
        ! the form without cancellation
        if (bq > 0.0_r8) then
          rcq = 1.0_r8 / cq2
          rg_s = (bq + sq) * rcq
        else
          rg_s = 2.0_r8 * c_s / (sq - bq)
        end if
      end if
      res = cix - c_s + p16 * a_n * rg_s
      if (.not. present(dres)) return

      ! d res / d ci = 1 + num / den (one division): d a_g / d ci through the smaller roots,
      ! dx = (da (b - x) + db (a - x)) / disc, then c_s and g_s (implicit derivative of the quadratic,
      ! whose d / d g_s is sq). With q = sq rg_s^2 d g_s / d A_n:
      ! d res / d ci = 1 + d a_g / d ci (p14c + p16 rg_s - p16 a_n q / sq).
      p14c = merge(p14, 0.0_r8, c_s > cs_min)
      if (a_n <= 0.0_r8) then
        num = p14c + p16 * rbb
        den = 1.0_r8
      else
        q = g1p * rg_s * (1.0_r8 + gb * hra * rg_s) + p14c * (1.0_r8 + rg_s * (gbb - gb * bb * rg_s))
        num = (p14c + p16 * rg_s) * sq - p16 * a_n * q
        den = sq
      end if
      if (c3) then
        ! d w_c / d ci = vcmax (Kc' + G*) / dc^2, d w_j / d ci = 3 je G* / dj^2; disc of w_c, w_j is |k| disc1
        num = num * (vcmax * (kcm + gammas) * (dj * r2)**2 * (k * v - wp) &
                     + je * 3.0_r8 * gammas * (dc * r2)**2 * (k * u - wp)) * (we - a_g)
        den = den * abs(k) * disc1 * disc2
      else
        num = num * kwe * (wp - a_g)
        den = den * disc2
      end if
      if (den > 0.0_r8) then
        dres = 1.0_r8 + num / den
      else
        dres = 1.0_r8                             ! degenerate (both rates 0): c_i,new depends little on c_i
      end if
    end subroutine ci_residual
  end subroutine leaf_photosynthesis

end module colm_photosynthesis
